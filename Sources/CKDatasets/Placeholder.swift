// CKDatasets
