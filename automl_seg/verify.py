"""A fast subset of the conformance kit, run on every installed plugin without pytest.

``automl-seg plugins list --verify`` calls :func:`verify_plugins`. It builds networks and exports
tiny models but runs no search (the kit's ``SearchStrategyContract`` does that): a few seconds in all.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl_seg.plugins import PluginHost
from automl_seg.testing import checks
from automl_seg.testing.fixtures import tiny_plan

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    """One check on one registered object: passed, or why not."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class PluginVerification:
    """Every check run on one plugin's registered objects."""

    plugin: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]


def _run(name: str, check: Callable[[], Any]) -> CheckResult:
    """Run one check; any exception (a contract violation or a crash in the plugin) is a failure."""
    try:
        check()
    except checks.ContractViolation as exc:
        return CheckResult(name, False, str(exc))
    except Exception as exc:  # a plugin bug must be reported, never crash the verification
        log.debug("check %s crashed", name, exc_info=True)
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(name, True)


def _space_checks(space: Any) -> Iterable[tuple[str, Callable[[], Any]]]:
    plan = tiny_plan()

    def builds() -> None:
        args = checks.check_space_args(space, plan, "quick")
        arch = checks.sample_arch(space, args)
        net = checks.check_space_network(space, args, arch, plan)
        checks.check_space_rebuild(space, net, args, arch, plan)

    yield "follows the SearchSpace contract", lambda: checks.check_identity("space", space)
    yield "builds, trains and rebuilds a network on a 16^3 patch", builds


def _strategy_checks(strategy: Any, spaces: list[str]) -> Iterable[tuple[str, Callable[[], Any]]]:
    yield "follows the SearchStrategy contract", lambda: checks.check_identity("strategy", strategy)
    yield "settings presets validate, unknown keys refused", lambda: checks.check_strategy_settings(strategy)
    yield "its search space is installed", lambda: checks.check_strategy_space_installed(strategy, spaces)


def _exporter_checks(exporter: Any, workdir: Path) -> Iterable[tuple[str, Callable[[], Any]]]:
    def roundtrip() -> None:
        import torch

        from automl_seg.testing.exporters import tiny_network, tiny_subject

        # The kit's seeded tiny U-Net and the registered model behind it: whole-model exporters
        # (``export_model``, e.g. a MONAI bundle) package the subject, the others export the network.
        model = tiny_network()
        example = torch.randn(1, 1, 16, 16, 16)
        folder = workdir / exporter.name
        folder.mkdir(parents=True, exist_ok=True)
        checks.check_export_roundtrip(
            exporter, model, example, folder, extra_inputs=[torch.randn(2, 1, 16, 32, 16)], subject=tiny_subject()
        )

    yield "follows the Exporter contract", lambda: checks.check_identity("exporter", exporter)
    yield "artefact matches torch (batch 1 and 2, two sizes)", roundtrip


def verify_plugins(host: PluginHost) -> list[PluginVerification]:
    """Per plugin (by name): did it load, and does each object it registered pass the fast checks."""
    spaces = sorted(host.registered["space"])
    results = []
    with tempfile.TemporaryDirectory(prefix="automl-seg-verify-") as tmp:
        for name in sorted(host.plugins):
            info = host.plugins[name]
            result = PluginVerification(plugin=name)
            result.checks.append(CheckResult("loads and registers", info.ok, "; ".join(info.errors)))
            for kind, names in sorted(info.registered.items()):
                for obj_name in names:
                    if host.owners.get((kind, obj_name)) != name:
                        continue  # refused as a collision: already reported by "loads and registers"
                    obj = host.registered[kind][obj_name]
                    if kind == "space":
                        pending = _space_checks(obj)
                    elif kind == "strategy":
                        pending = _strategy_checks(obj, spaces)
                    else:
                        pending = _exporter_checks(obj, Path(tmp))
                    result.checks.extend(_run(f"{kind} '{obj_name}' {what}", check) for what, check in pending)
            results.append(result)
    return results
