"""``automl-seg compare``: does search earn its cost? Strategies x seeds at equal compute, scored on held-out
cases, with paired tests (see :mod:`automl_seg.compare.run`)."""

from automl_seg.compare.report import CompareReport
from automl_seg.compare.run import Comparison, run_comparison
from automl_seg.compare.settings import TIME_BUDGET_KEY, CompareSettings

__all__ = ["TIME_BUDGET_KEY", "CompareReport", "CompareSettings", "Comparison", "run_comparison"]
