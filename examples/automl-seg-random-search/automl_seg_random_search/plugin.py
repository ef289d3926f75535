"""Entry point (group ``automl_seg``, name ``random``): registers the ``random`` search strategy."""

from __future__ import annotations

from collections.abc import Callable

from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import SearchStrategy
from automl_seg_random_search.strategy import RandomSearch

#: The automl-seg plugin API this plugin was written for; another major version is refused by name.
AUTOML_SEG_API = 2


@hookimpl
def register_search_strategies(register: Callable[[SearchStrategy], None]) -> None:
    register(RandomSearch())
