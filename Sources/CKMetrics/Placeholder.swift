// CKMetrics
