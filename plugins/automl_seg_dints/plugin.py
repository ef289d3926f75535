"""Entry point of the dints plugin: the ``dints`` search space and the ``dints`` search strategy."""

from __future__ import annotations

from collections.abc import Callable

from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import SearchSpace, SearchStrategy
from automl_seg_dints.space import DintsSpace
from automl_seg_dints.strategy import DintsStrategy
from automl_seg_dints.tunable import tunable_parameters  # noqa: F401  (hookimpl)

AUTOML_SEG_API = 2
__version__ = "0.1.0"


@hookimpl
def register_search_spaces(register: Callable[[SearchSpace], None]) -> None:
    register(DintsSpace())


@hookimpl
def register_search_strategies(register: Callable[[SearchStrategy], None]) -> None:
    register(DintsStrategy())
