"""The ``fixed`` strategy: no search at all, it returns the fixed space's only architecture."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from automl_seg.api import build_settings
from automl_seg.errors import ConfigError
from automl_seg.interfaces import Budget, SearchContext, SearchOutcome
from automl_seg_fixed.space import max_heads


class FixedSettings(BaseModel):
    """The fixed strategy searches nothing; it can only change the network's training outputs."""

    model_config = ConfigDict(extra="forbid")

    deep_supervision: NonNegativeInt | None = Field(
        default=None, description="extra output heads trained by deep supervision; None = the budget's"
    )


class FixedStrategy:
    name = "fixed"
    space = "fixed"

    def settings(self, budget: Budget, overrides: Mapping[str, Any]) -> BaseModel:
        return build_settings(FixedSettings, overrides=overrides, source="fixed strategy settings")

    def search(self, ctx: SearchContext) -> SearchOutcome:
        args = dict(ctx.space_args)
        heads = cast(FixedSettings, ctx.settings).deep_supervision
        if heads is not None:
            room = max_heads(args["strides"])
            if heads > room:
                raise ConfigError(
                    f"deep_supervision={heads}: this plan's DynUNet has {room} decoder level(s) below the top "
                    f"for heads; use at most {room}"
                )
            args["deep_supervision"] = heads
        return SearchOutcome(arch={}, space_args=args, history=[], metrics={})
