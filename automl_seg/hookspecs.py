"""The hooks automl-seg offers plugins.

A plugin is a module (or object) named in the ``automl_seg`` entry-point group that implements
some of these hooks, each marked ``@hookimpl`` (``from automl_seg.hookspecs import hookimpl``), and
declares ``AUTOML_SEG_API = 2`` (the ``automl_seg.API_VERSION`` it was written for). Registration
hooks get a ``register`` callback: the host owns the names and rejects duplicates. Lifecycle hooks
let observers (TensorBoard, MLflow, ...) follow a run without the engine knowing them.

Lifecycle of one run (``automl_seg.interfaces.RunInfo``; ``run.kind`` is ``"search"``, ``"train"``
or ``"tune"``): ``on_run_started`` once, then ``on_epoch_ended`` after each epoch (``phase="search"``
for the strategy's epochs, then ``phase="train"`` for the retraining inside the same search run, or
for a standalone ``train`` run), ``on_model_registered`` after each registration, then
``on_run_ended`` exactly once, also when the run fails (``result["status"]``). An observer may end
a run on purpose by raising ``automl_seg.errors.RunStopped`` from ``on_epoch_ended`` (the run stops
after that epoch's checkpoint, resumable); any other exception of an observer is logged and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from automl_seg_registry import ArchitectureRecord

    from automl_seg.interfaces import Exporter, RunInfo, SearchSpace, SearchStrategy, TunableParameter

PROJECT = "automl_seg"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_search_strategies(register: Callable[[SearchStrategy], None]) -> None:
    """Register search strategies by calling ``register(strategy)`` once per strategy."""


@hookspec
def register_search_spaces(register: Callable[[SearchSpace], None]) -> None:
    """Register search spaces by calling ``register(space)`` once per space."""


@hookspec
def register_exporters(register: Callable[[Exporter], None]) -> None:
    """Register exporters (ONNX, TorchScript, ...) by calling ``register(exporter)``."""


@hookspec
def tunable_parameters(strategy: str, space: str) -> list[TunableParameter] | None:
    """Hyper-parameters (with ranges) this plugin lets ``automl-seg tune`` search for a run of
    ``strategy`` on ``space``; return None when the plugin has nothing to tune for that pair."""


@hookspec
def on_run_started(run: RunInfo) -> None:
    """Called once when a search, training or tuning run starts."""


@hookspec
def on_epoch_ended(run: RunInfo, phase: str, epoch: int, metrics: Mapping[str, float]) -> None:
    """Called after every epoch of a phase (``"search"``, ``"train"``) with that epoch's metrics."""


@hookspec
def on_model_registered(
    run: RunInfo, record: ArchitectureRecord, files: Mapping[str, Path], aliases: list[str]
) -> None:
    """Called after ``run`` registered ``record`` (a searched architecture, or a trained model with
    weights), with its stored files by artifact name and the aliases (``best``) it holds now.
    The files belong to the registry: read them, never change them."""


@hookspec
def on_run_ended(run: RunInfo, result: Mapping[str, Any]) -> None:
    """Called once when a run ends, also when it fails. ``result["status"]`` is ``"finished"``,
    ``"failed"``, ``"stopped"`` (an observer ended it) or ``"interrupted"``; a failed run's
    ``result["error"]`` says why. A finished search or training run adds its registry refs
    (``architecture``: the searched architecture, search runs only; ``trained``: the trained model,
    or None with ``--no-train``), ``dice_mean`` (its mean validation Dice, or None) and ``promoted``
    (whether it became ``<name>@best``); a tuning run adds ``best``."""


@hookspec(warn_on_impl=DeprecationWarning("on_search_ended is API 1's name of on_run_ended; implement on_run_ended"))
def on_search_ended(run: RunInfo, result: Mapping[str, Any]) -> None:
    """API 1's name of ``on_run_ended`` (it fires for retraining and tuning too): still called, with
    the same arguments, right after ``on_run_ended``."""
