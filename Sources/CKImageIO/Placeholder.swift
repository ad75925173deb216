// CKImageIO
