"""The automl-seg architecture registry: typed records and a local store."""
