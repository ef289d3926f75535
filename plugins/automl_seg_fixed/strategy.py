"""The ``fixed`` strategy: no search at all, it returns the fixed space's only architecture."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from automl_seg.api import build_settings
from automl_seg.interfaces import Budget, SearchContext, SearchOutcome


class FixedSettings(BaseModel):
    """The fixed strategy has nothing to tune: any key is an error."""

    model_config = ConfigDict(extra="forbid")


class FixedStrategy:
    name = "fixed"
    space = "fixed"

    def settings(self, budget: Budget, overrides: Mapping[str, Any]) -> BaseModel:
        return build_settings(FixedSettings, overrides=overrides, source="fixed strategy settings")

    def search(self, ctx: SearchContext) -> SearchOutcome:
        return SearchOutcome(arch={}, space_args=dict(ctx.space_args), history=[], metrics={})
