// placeholder until CKNNTests has tests
