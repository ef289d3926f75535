"""First-party automl-seg plugin: fixed."""
