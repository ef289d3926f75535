"""``automl-seg report``: one self-contained HTML page about a registered record."""

from automl_seg.report.build import build_report

__all__ = ["build_report"]
