"""Entry point of the export plugin (filled in by its issue)."""

AUTOML_SEG_API = 1
