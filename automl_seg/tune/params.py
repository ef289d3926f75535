"""The tuning search space: what plugins declare, what the user narrows or fixes, what a trial picks.

Plugins (and the engine, for training settings) declare ``TunableParameter``s through the
``tunable_parameters(strategy, space)`` hook; nothing here knows a parameter by name. The user's
config file may narrow a range, restrict the choices or fix a value (``tune.params`` section)::

    tune:
      params:
        weight_lr: {low: 0.01, high: 0.1}   # narrow
        batch_size: {choices: [2]}          # restrict
        warmup_fraction: 0.5                # fix (not searched, still applied to every trial)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pluggy import HookImpl
from pydantic import BaseModel, ConfigDict, ValidationError

from automl_seg.config import describe_validation_error
from automl_seg.errors import ConfigError, PluginError
from automl_seg.interfaces import TunableParameter
from automl_seg.plugins import DISABLE_ENV, PluginHost, call_hookimpl

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

Target = Literal["strategy", "space", "train", "data"]
TARGETS: tuple[Target, ...] = ("strategy", "space", "train", "data")
#: what Optuna stores as a parameter's value (a categorical choice of another type is offered as a label)
ParamValue = None | bool | int | float | str


class Narrowing(BaseModel):
    """The user's restriction of one declared parameter (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    low: float | None = None
    high: float | None = None
    log: bool | None = None
    choices: list[Any] | None = None


class ParameterSpec(BaseModel):
    """One parameter of the study: its declaration after the user's narrowing, or a fixed value."""

    model_config = ConfigDict(extra="forbid")

    param: TunableParameter
    owner: str
    fixed: Any = None
    is_fixed: bool = False

    @property
    def scope(self) -> str:
        """What a trial may take, as tables and messages print it: ``[0.01, 0.1] log``, ``one of 8, 16``
        or ``fixed = 2``."""
        p = self.param
        if self.is_fixed:
            return f"fixed = {self.fixed!r}"
        if p.kind == "categorical":
            return "one of " + ", ".join(str(choice_label(c)) for c in p.choices or [])
        return f"[{p.low:g}, {p.high:g}]" + (" log" if p.log else "")


def collect_parameters(
    host: PluginHost, strategy: str, space: str, defaults: Sequence[tuple[str, TunableParameter]] = ()
) -> list[tuple[str, TunableParameter]]:
    """Every ``(plugin name, parameter)`` declared for ``strategy`` on ``space``, in plugin order.

    ``defaults`` (the engine's own training/data parameters) come last and yield to a plugin that
    declares the same name: the plugin knows its constraints (e.g. patch sides divisible by 32).

    A name declared twice (even for different targets) is a plugin error: Optuna knows a parameter
    by its name only, and the value could go to only one of them. A plugin whose declaration fails
    stops the study when it provides the strategy or space being tuned; any other such plugin is
    left out with a warning, so one broken plugin does not stop tuning the others."""
    hook = host.pm.hook.tunable_parameters
    tuned = {host.owners.get(("strategy", strategy)), host.owners.get(("space", space))}
    found: list[tuple[str, TunableParameter]] = []
    owners: dict[str, str] = {}
    for impl in hook.get_hookimpls():
        try:
            declared = _declared(impl, strategy, space)
        except PluginError as exc:
            if impl.plugin_name in tuned:
                raise PluginError(f"{exc}; fix the plugin or tune another strategy") from exc
            log.warning("%s; its parameters are left out (disable it with %s=%s)", exc, DISABLE_ENV, impl.plugin_name)
            continue
        for param in declared:
            if param.name in owners:
                raise PluginError(
                    f"tunable parameter '{param.name}' is declared by plugins '{owners[param.name]}' and "
                    f"'{impl.plugin_name}'; disable one of them"
                )
            owners[param.name] = impl.plugin_name
            found.append((impl.plugin_name, param))
    found += [(owner, param) for owner, param in defaults if param.name not in owners]
    return found


def check_extremes(specs: list[ParameterSpec], target: Target, validate: Callable[[dict[str, Any]], object]) -> None:
    """Refuse, before any trial runs, a range whose end ``validate`` (the target's settings) rejects,
    e.g. ``warmup_epochs`` up to 4 with 3 search epochs: the trials drawing it would all fail. The
    settings every trial starts from (the values fixed in ``tune.params`` included) must be valid
    first, else no range is to blame."""
    ours = [spec for spec in specs if spec.param.target == target]
    fixed = {spec.param.name: spec.fixed for spec in ours if spec.is_fixed}
    try:
        validate(fixed)
    except ConfigError as exc:
        named = ", ".join(f"{name} = {value!r}" for name, value in fixed.items())
        where = f" (fixed in tune.params: {named})" if fixed else ""
        raise ConfigError(f"the {target} settings every trial starts from{where} are invalid: {exc}") from exc
    for spec in ours:
        param = spec.param
        if spec.is_fixed:
            continue
        if param.kind == "categorical":
            ends = list(param.choices or [])
        else:
            cast = int if param.kind == "int" else float
            ends = [cast(end) for end in _range(param)]
        for value in ends:
            try:
                validate({**fixed, param.name: value})
            except ConfigError as exc:
                raise ConfigError(
                    f"tuning {param.name} = {value} (range {spec.scope}) cannot run: {exc}; narrow or fix "
                    f"{param.name} in the config file's tune.params section"
                ) from exc


def _declared(impl: HookImpl, strategy: str, space: str) -> list[TunableParameter]:
    """One plugin's valid declarations; any failure is a ``PluginError`` naming the plugin."""
    try:
        items = call_hookimpl(impl, strategy=strategy, space=space) or []
    except Exception as exc:
        raise PluginError(
            f"plugin '{impl.plugin_name}' failed to declare tunable parameters: {type(exc).__name__}: {exc}"
        ) from exc
    return [_as_parameter(item, impl.plugin_name) for item in items]


def _as_parameter(item: Any, plugin: str) -> TunableParameter:
    try:
        param = item if isinstance(item, TunableParameter) else TunableParameter.model_validate(item)
    except ValidationError as exc:
        raise PluginError(describe_validation_error(exc, f"plugin '{plugin}' tunable parameter")) from exc
    _check_declaration(param, f"plugin '{plugin}'", PluginError)
    return param


def _check_declaration(param: TunableParameter, source: str, error: type[Exception]) -> None:
    """A usable range: numeric bounds for float/int (positive when log), non-empty choices otherwise."""
    if param.kind == "categorical":
        if not param.choices:
            raise error(f"{source}: categorical parameter '{param.name}' needs a non-empty list of choices")
        return
    if param.low is None or param.high is None or not param.low <= param.high:
        raise error(f"{source}: parameter '{param.name}' needs low <= high (got {param.low}, {param.high})")
    if param.log and param.low <= 0:
        raise error(f"{source}: log-scale parameter '{param.name}' needs low > 0 (got {param.low})")


def _range(param: TunableParameter) -> tuple[float, float]:
    """A numeric parameter's ``(low, high)``, which ``_check_declaration`` made sure it declares."""
    if param.low is None or param.high is None:
        raise PluginError(f"parameter '{param.name}' declares no low/high")
    return param.low, param.high


def build_space(
    declared: list[tuple[str, TunableParameter]], user: Mapping[str, Any] | None = None, source: str = "config"
) -> list[ParameterSpec]:
    """Apply the user's ``tune.params`` section to the declared parameters.

    A value that is a mapping narrows (``low``/``high``/``log``/``choices``, inside the declared
    range); any other value fixes the parameter. Unknown names are a one-line ``ConfigError``."""
    by_name = {param.name: (owner, param) for owner, param in declared}
    user = dict(user or {})
    unknown = sorted(set(user) - set(by_name))
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise ConfigError(f"{source}: unknown tunable parameter(s) {', '.join(unknown)}; known: {known}")
    specs = []
    for name, (owner, param) in by_name.items():
        if name not in user:
            specs.append(ParameterSpec(param=param, owner=owner))
        elif isinstance(user[name], Mapping):
            specs.append(ParameterSpec(param=_narrow(param, user[name], source), owner=owner))
        else:
            specs.append(
                ParameterSpec(param=param, owner=owner, fixed=_declared_choice(param, user[name]), is_fixed=True)
            )
    return specs


def _declared_choice(param: TunableParameter, value: Any) -> Any:
    """A categorical value as declared, also when written as the label tables print (``32x32x32`` for
    ``[32, 32, 32]``); any other value unchanged."""
    if param.kind != "categorical" or value in (param.choices or []):
        return value
    by_label = {choice_label(choice): choice for choice in param.choices or []}
    return by_label.get(value, value) if isinstance(value, str) else value


def _narrow(param: TunableParameter, raw: Mapping[str, Any], source: str) -> TunableParameter:
    where = f"{source}: tune.params.{param.name}"
    try:
        narrowing = Narrowing.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, f"{source} tune.params.{param.name}")) from exc
    if param.kind == "categorical":
        if narrowing.low is not None or narrowing.high is not None:
            raise ConfigError(f"{where}: categorical parameter takes 'choices', not low/high")
        choices = (
            param.choices if narrowing.choices is None else [_declared_choice(param, c) for c in narrowing.choices]
        )
        outside = [c for c in choices or [] if c not in (param.choices or [])]
        if outside:
            raise ConfigError(f"{where}: choices {outside} are not among the declared {param.choices}")
        narrowed = param.model_copy(update={"choices": choices})
    else:
        if narrowing.choices is not None:
            raise ConfigError(f"{where}: numeric parameter takes low/high, not 'choices'")
        declared_low, declared_high = _range(param)
        low = declared_low if narrowing.low is None else narrowing.low
        high = declared_high if narrowing.high is None else narrowing.high
        if low < declared_low or high > declared_high:
            raise ConfigError(f"{where}: range [{low}, {high}] leaves the declared [{param.low}, {param.high}]")
        log = param.log if narrowing.log is None else narrowing.log
        narrowed = param.model_copy(update={"low": low, "high": high, "log": log})
    _check_declaration(narrowed, where, ConfigError)
    return narrowed


def suggest(trial: optuna.Trial, specs: list[ParameterSpec]) -> dict[Target, dict[str, Any]]:
    """Values for one trial, grouped by where they go: ``{"strategy": {...}, "space": {...}, "train": {...}}``."""
    values: dict[Target, dict[str, Any]] = {target: {} for target in TARGETS}
    for spec in specs:
        p = spec.param
        if spec.is_fixed:
            value = spec.fixed
        elif p.kind == "categorical":
            labels = [choice_label(c) for c in p.choices or []]
            value = (p.choices or [])[labels.index(trial.suggest_categorical(p.name, labels))]
        elif p.kind == "int":
            low, high = _range(p)
            value = trial.suggest_int(p.name, int(math.ceil(low)), int(high), log=p.log)
        else:
            low, high = _range(p)
            value = trial.suggest_float(p.name, float(low), float(high), log=p.log)
        values[p.target][p.name] = value
    return values


def choice_label(choice: Any) -> ParamValue:
    """Optuna stores categorical choices of plain types only: a list such as a patch size
    ``[32, 48, 32]`` is offered as the label ``"32x48x32"`` (other objects as their JSON)."""
    if choice is None or isinstance(choice, bool | int | float | str):
        return choice
    if isinstance(choice, list | tuple) and all(isinstance(v, int | float) for v in choice):
        return "x".join(f"{v:g}" for v in choice)
    return json.dumps(choice, sort_keys=True)
