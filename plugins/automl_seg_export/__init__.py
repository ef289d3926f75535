"""First-party automl-seg plugin: export."""
