"""Entry point of the dints plugin (filled in by its issue)."""

AUTOML_SEG_API = 1
