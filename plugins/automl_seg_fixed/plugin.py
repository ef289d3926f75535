"""Entry point of the fixed plugin: a DynUNet baseline space and a strategy that just returns it."""

from __future__ import annotations

from collections.abc import Callable

from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import SearchSpace, SearchStrategy
from automl_seg_fixed.space import FixedSpace
from automl_seg_fixed.strategy import FixedStrategy

AUTOML_SEG_API = 2


@hookimpl
def register_search_spaces(register: Callable[[SearchSpace], None]) -> None:
    register(FixedSpace())


@hookimpl
def register_search_strategies(register: Callable[[SearchStrategy], None]) -> None:
    register(FixedStrategy())
