// placeholder until CKConsistencyTests has tests
