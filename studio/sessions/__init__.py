"""The studio's side of the engine: one session owns the training thread, one owns the retrieval model."""
