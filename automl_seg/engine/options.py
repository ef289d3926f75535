"""A strategy's options: its pydantic settings model is the one list of keys a user may set.

``search --set KEY=VALUE`` and a config file's ``strategy`` section go through the strategy's own
``settings(budget, overrides)``; the core names none of them. A key the strategy has no field for is
refused with the keys it has, and ``automl-seg plugins show NAME`` lists them with their defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from automl_seg.config import describe_validation_error
from automl_seg.errors import ConfigError, UserError
from automl_seg.interfaces import SearchStrategy

if TYPE_CHECKING:
    from automl_seg.plugins import PluginHost


def chosen_strategy(host: PluginHost, name: str | None) -> SearchStrategy:
    """The strategy a run names; the core has no default strategy, so none named is a clear error."""
    if name is None:
        installed = ", ".join(sorted(host.registered["strategy"])) or "none"
        raise ConfigError(f"no search strategy given: pass --strategy NAME (installed: {installed})")
    return host.strategy(name)


def parse_assignments(items: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """``["epochs=3", "memory_budget=900MB"]`` -> ``{"epochs": 3, "memory_budget": "900MB"}``; values
    are numbers, YAML booleans or ``null`` where they read as such, else strings."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r} is not KEY=VALUE, e.g. {flag} epochs=3")
        values[key] = _scalar(text)
    return values


def _scalar(text: str) -> Any:
    """A number when ``text`` is one (``1e-3`` included, which YAML 1.1 keeps as text), else YAML's
    boolean or null, else the text itself."""
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | bool) or value is None else text


def settings_model(strategy: SearchStrategy, budget: str) -> type[BaseModel]:
    """The pydantic model of the strategy's settings (from its preset for ``budget``, no overrides)."""
    return type(strategy.settings(budget, {}))


def strategy_settings(strategy: SearchStrategy, budget: str, overrides: Mapping[str, Any]) -> BaseModel:
    """The strategy's settings for ``budget`` with ``overrides``; one ``ConfigError`` line on a bad value,
    and on a key the strategy has no setting for, the keys it has."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return strategy.settings(budget, given)
    except (ValidationError, UserError) as exc:
        try:
            known = list(settings_model(strategy, budget).model_fields)
        except (ValidationError, UserError):
            known = None
        unknown = sorted(set(given) - set(known)) if known is not None else []
        if unknown:
            keys = ", ".join(known) if known else "none"
            raise ConfigError(
                f"strategy '{strategy.name}' has no setting {', '.join(unknown)}; its settings: {keys} "
                f"(`automl-seg plugins show {strategy.name}` lists them with their defaults)"
            ) from exc
        if isinstance(exc, ValidationError):
            raise ConfigError(describe_validation_error(exc, f"strategy '{strategy.name}' settings")) from exc
        raise


def setting_rows(strategy: SearchStrategy, budgets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per setting: ``key``, ``type``, ``help`` and the default under each budget (``defaults``)."""
    presets = {}
    for budget in budgets:
        try:
            presets[budget] = strategy.settings(budget, {})
        except (ValidationError, UserError):
            continue  # a budget this strategy has no preset for
    if not presets:
        return []
    model = type(next(iter(presets.values())))
    return [
        {
            "key": name,
            "type": _type_name(field.annotation),
            "help": field.description or "",
            "defaults": {b: getattr(settings, name) for b, settings in presets.items()},
        }
        for name, field in model.model_fields.items()
    ]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return text or str(annotation).replace("typing.", "")
