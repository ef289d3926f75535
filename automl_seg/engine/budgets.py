"""Budgets: named presets, an open set.

A budget (``quick``, ``standard``, ``full``, or any name a plugin brings) picks one preset in every
part of a run: the engine's training preset (``TRAIN_PRESETS``), the strategy's settings and the
search space's default arguments. The engine declares its names by the keys of ``TRAIN_PRESETS``;
a strategy or a space declares its own with a ``budgets`` attribute (a sequence of names). A part
that declares nothing accepts every budget (the fixed strategy has no presets at all). A run can use
a budget only when every part it runs knows it, so the budgets known to a run are the intersection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from automl_seg.config import BUDGET_PATTERN
from automl_seg.engine.settings import TRAIN_PRESETS
from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    from automl_seg.plugins import PluginHost

_NAME = re.compile(BUDGET_PATTERN)


def declared_budgets(part: object) -> tuple[str, ...] | None:
    """The budgets a strategy or space declares (its ``budgets`` attribute); None when it declares none."""
    value = getattr(part, "budgets", None)
    return None if value is None else tuple(value)


def budget_declaration_problem(part: object) -> str | None:
    """Why a plugin object's ``budgets`` attribute is unusable (not a sequence of names), or None."""
    value = getattr(part, "budgets", None)
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        return f"budgets must be a sequence of names, not {type(value).__name__}"
    bad = [name for name in value if not isinstance(name, str) or not _NAME.match(name)]
    if bad:
        return f"budgets holds invalid name(s) {', '.join(map(repr, bad))} (use [a-z0-9_-], starting with a letter)"
    return None


def _label(kind: str, part: object) -> str:
    return f"{kind} '{getattr(part, 'name', '?')}'"


def known_budgets(**parts: object) -> list[str]:
    """The budgets every part knows, in the engine's order: ``known_budgets(strategy=s, space=sp)``."""
    declared = [d for d in map(declared_budgets, parts.values()) if d is not None]
    return [name for name in TRAIN_PRESETS if all(name in d for d in declared)]


def check_budget(budget: str, **parts: object) -> None:
    """``ConfigError`` (one line) unless the engine and every part (keyword = what it is: ``strategy``,
    ``space``) know ``budget``; the message names the part that lacks it and lists the usable ones."""
    known = known_budgets(**parts)
    if budget in known:
        return
    labels = [_label(kind, part) for kind, part in parts.items()]
    scope = f" for {' on '.join(labels)}" if labels else ""
    usable = ", ".join(known) or "none"
    declared = {kind: d for kind, part in parts.items() if (d := declared_budgets(part)) is not None}
    if budget not in TRAIN_PRESETS and not any(budget in d for d in declared.values()):
        raise ConfigError(f"unknown budget '{budget}'; known{scope}: {usable}")
    lacking = ["the engine's training presets"] if budget not in TRAIN_PRESETS else []
    lacking += [_label(kind, parts[kind]) for kind, d in declared.items() if budget not in d]
    raise ConfigError(f"budget '{budget}' is not offered by {' or '.join(lacking)}; known{scope}: {usable}")


def check_search_budget(host: PluginHost, budget: str, strategy: str) -> None:
    """``check_budget`` for a search with ``strategy`` (and the space it searches) from ``host``."""
    found = host.strategy(strategy)
    check_budget(budget, strategy=found, space=host.space(found.space))
