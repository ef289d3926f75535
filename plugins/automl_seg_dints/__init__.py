"""First-party automl-seg plugin: dints."""
