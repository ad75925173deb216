// CKConsistency
