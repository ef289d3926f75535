"""The ``dints`` search strategy: differentiable topology and operation search (arXiv 2103.15954)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_seg.interfaces import SearchContext, SearchOutcome
from automl_seg_dints.settings import PRESETS, DintsSettings, dints_settings


class DintsStrategy:
    """Bi-level DiNTS search of the ``dints`` space under a memory budget."""

    name = "dints"
    space = "dints"
    budgets = tuple(PRESETS)

    def settings(self, budget: str, overrides: Mapping[str, Any]) -> DintsSettings:
        return dints_settings(budget, overrides)

    def search(self, ctx: SearchContext) -> SearchOutcome:
        from automl_seg_dints.search import DintsSearch  # torch and monai only when a search runs

        return DintsSearch(ctx).run()
