"""Loading plugins: one ``PluginHost`` per run (no global manager).

Plugins come from the ``automl_seg`` entry-point group, built-in ones included: a module, or a class
(instantiated once per host, for observers that keep per-run state). Each is loaded,
validated and asked to register its objects on its own, so one broken plugin is reported with its
name and the error and does not take the CLI or the other plugins down.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from automl_seg import API_VERSION, SUPPORTED_API_VERSIONS, hookspecs
from automl_seg.engine.budgets import budget_declaration_problem
from automl_seg.errors import PluginError, RunStopped
from automl_seg.interfaces import Exporter, RunInfo, SearchSpace, SearchStrategy

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "AUTOML_SEG_DISABLE_PLUGINS"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

#: registration hook -> (kind shown to users, protocol the registered objects must follow)
KINDS: dict[str, tuple[str, type]] = {
    "register_search_strategies": ("strategy", SearchStrategy),
    "register_search_spaces": ("space", SearchSpace),
    "register_exporters": ("exporter", Exporter),
}


@dataclass
class PluginInfo:
    """What ``plugins list`` shows about one plugin."""

    name: str
    version: str
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class PluginHost:
    """A pluggy manager plus the strategies, spaces and exporters its plugins registered."""

    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    registered: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind, _ in KINDS.values()})
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    collisions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    #: whether lifecycle hooks reach the observers (off on the ranks other than 0 of a DDP job)
    observing: bool = True

    @property
    def problems(self) -> list[str]:
        return [f"plugin '{p.name}': {e}" for p in self.plugins.values() for e in p.errors]

    def get(self, kind: str, name: str) -> Any:
        """The object registered as ``name``; a clear error when unknown or ambiguous."""
        if (kind, name) in self.collisions:
            owners = " and ".join(self.collisions[(kind, name)])
            raise PluginError(
                f"{kind} '{name}' is registered by several plugins ({owners}); disable one with {DISABLE_ENV}=<plugin>"
            )
        table = self.registered[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise PluginError(f"unknown {kind} '{name}'; installed: {known}")
        return table[name]

    def strategy(self, name: str) -> SearchStrategy:
        return self.get("strategy", name)

    def space(self, name: str) -> SearchSpace:
        return self.get("space", name)

    def exporter(self, name: str) -> Exporter:
        return self.get("exporter", name)

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every observer; a failing observer is logged, never fatal.

        Only ``RunStopped`` goes through: it is how an observer (a pruner) ends a run on purpose.
        ``on_run_ended`` also calls API 1's ``on_search_ended`` implementations."""
        if not self.observing:
            return
        impls = list(getattr(self.pm.hook, hook).get_hookimpls())
        if hook == "on_run_ended":
            impls += self.pm.hook.on_search_ended.get_hookimpls()
        for impl in impls:
            try:
                call_hookimpl(impl, **kwargs)
            except RunStopped:
                raise
            except Exception as exc:  # an observer must not break the run
                log.warning("plugin '%s' failed in %s: %s", impl.plugin_name, hook, exc)

    @contextmanager
    def observed(self, run: RunInfo) -> Iterator[dict[str, Any]]:
        """``on_run_started``, the block, then ``on_run_ended`` exactly once: with ``status`` "finished"
        and the summary the block put into the yielded dict, or with the failure's status and reason."""
        self.notify("on_run_started", run=run)
        summary: dict[str, Any] = {}
        try:
            yield summary
        except BaseException as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.notify("on_run_ended", run=run, result={"status": _end_status(exc), "error": reason})
            raise
        self.notify("on_run_ended", run=run, result={"status": "finished", **summary})

    # -- loading -----------------------------------------------------------------------------

    def add(self, plugin: object, name: str, version: str = "unknown") -> None:
        """Register one plugin object and collect what it registers."""
        info = self.plugins.setdefault(name, PluginInfo(name=name, version=version))
        api = getattr(plugin, "AUTOML_SEG_API", API_VERSION)
        if api not in SUPPORTED_API_VERSIONS:
            supported = ", ".join(map(str, SUPPORTED_API_VERSIONS))
            info.errors.append(
                f"written for plugin API {api}, this automl-seg provides API {API_VERSION} (and loads {supported}); "
                "upgrade the plugin or automl-seg"
            )
            return
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a broken plugin never takes the others down
            self.pm.unregister(name=name)
            info.errors.append(f"invalid hooks: {exc}")
            return
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        for hook, (kind, protocol) in KINDS.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if impl.plugin_name == name:
                    self._collect(info, impl, kind, protocol)

    def _admit(self, info: PluginInfo, obj: Any, kind: str, protocol: type) -> str | None:
        obj_name = getattr(obj, "name", None)
        if not isinstance(obj_name, str) or not _NAME.match(obj_name):
            return f"registered a {kind} with invalid name {obj_name!r} (use [a-z0-9_-])"
        if not isinstance(obj, protocol):
            return f"{kind} '{obj_name}' does not follow the {protocol.__name__} interface"
        budgets_problem = budget_declaration_problem(obj)
        if budgets_problem:
            return f"{kind} '{obj_name}': {budgets_problem}"
        owner = self.owners.get((kind, obj_name))
        if owner is not None and owner != info.name:
            self.collisions.setdefault((kind, obj_name), [owner]).append(info.name)
            return f"{kind} '{obj_name}' is already registered by plugin '{owner}'"
        self.owners[(kind, obj_name)] = info.name
        self.registered[kind][obj_name] = obj
        info.registered.setdefault(kind, []).append(obj_name)
        return None

    def _collect(self, info: PluginInfo, impl: pluggy.HookImpl, kind: str, protocol: type) -> None:
        def register(obj: Any) -> None:
            """Accept ``obj`` or record why not; a rejected object never stops the plugin's hook."""
            problem = self._admit(info, obj, kind, protocol)
            if problem:
                info.errors.append(problem)

        try:
            call_hookimpl(impl, register=register)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - e.g. a sys.exit() in a registration hook
            info.errors.append(f"{type(exc).__name__}: {exc}")


def _end_status(exc: BaseException) -> str:
    if isinstance(exc, RunStopped):
        return "stopped"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return "failed"


def call_hookimpl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one plugin's implementation with the hook arguments it names (as pluggy itself does):
    an implementation may leave out the arguments it does not use."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def _disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _version(ep: EntryPoint, module: object) -> str:
    if ep.dist is not None:
        return ep.dist.version
    return str(getattr(module, "__version__", "unknown"))


def load_plugins(
    extra: Iterable[tuple[str, object]] = (),
    disabled: set[str] | None = None,
    use_entry_points: bool = True,
) -> PluginHost:
    """A fresh host with every installed plugin (minus the disabled ones) and ``extra`` ones.

    ``extra`` holds ``(name, plugin_object)`` pairs, for tests and embedding applications."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm)
    extra = list(extra)
    disabled = _disabled_from_env() if disabled is None else disabled
    eps = entry_points(group=ENTRY_POINT_GROUP) if use_entry_points else []
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in disabled:
            continue
        try:
            module = ep.load()
            if isinstance(module, type):  # a class: one instance per host, so an observer's state is per run
                module = module()
        except KeyboardInterrupt:  # Ctrl-C (and SIGTERM) still stop the command
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit & co. from a plugin's import are its failure
            host.plugins[ep.name] = PluginInfo(
                name=ep.name,
                version=ep.dist.version if ep.dist else "unknown",
                errors=[f"failed to import {ep.value}: {type(exc).__name__}: {exc}"],
            )
            continue
        host.add(module, ep.name, _version(ep, module))
    for name, plugin in extra:
        if name not in disabled:
            host.add(plugin, name, str(getattr(plugin, "__version__", "unknown")))
    unknown = sorted(disabled - {ep.name for ep in eps} - {name for name, _ in extra})
    if unknown and use_entry_points:
        log.warning("%s names no installed plugin: %s (see `automl-seg plugins list`)", DISABLE_ENV, ", ".join(unknown))
    for problem in host.problems:
        log.warning("%s", problem)
    return host
