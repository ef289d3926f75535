"""Entry point of the fixed plugin (filled in by its issue)."""

AUTOML_SEG_API = 1
