"""Tiny inputs for conformance checks: a plan, a synthetic dataset, a search context, a registry.

Plain functions (no pytest) so that ``automl_seg.verify`` and plugin authors' own scripts can use
them too. Everything is small enough to run on a laptop CPU in seconds.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from automl_seg.data.models import Plan
from automl_seg.interfaces import Budget, RunInfo, SearchContext, SearchOutcome, new_run_id

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.data.prepared import PreparedData
    from automl_seg.interfaces import SearchSpace, SearchStrategy

log = logging.getLogger(__name__)

TINY_DATASET = "Task99_Synthetic"
TINY_CASES = 6
TINY_SHAPE = (20, 20, 20)
#: training patch of the tiny plan (the contracts' default ``patch_size``)
TINY_PATCH = (16, 16, 16)


def tiny_plan(
    patch_size: tuple[int, int, int] = TINY_PATCH,
    in_channels: int = 1,
    num_classes: int = 3,
    divisor: int | None = None,
) -> Plan:
    """A plan like the synthetic dataset's: 1 mm MRI, labels {0, 1, 2}, a small cubic patch."""
    return Plan(
        dataset=TINY_DATASET,
        modality="MRI",
        in_channels=in_channels,
        num_classes=num_classes,
        labels={c: f"class{c}" for c in range(num_classes)},
        spacing=(1.0, 1.0, 1.0),
        patch_size=patch_size,
        divisor=divisor or min(patch_size),
        batch_size=2,
        samples_per_image=1,
    )


def tiny_dataset(root: Path, seed: int = 0) -> Path:
    """Write (once) a small synthetic MSD task under ``root``; return the data root."""
    from automl_seg.data.synthetic import make_synthetic_msd

    root = Path(root)
    if not (root / TINY_DATASET / "dataset.json").is_file():
        make_synthetic_msd(root, name=TINY_DATASET, num_cases=TINY_CASES, shape=TINY_SHAPE, seed=seed)
    return root


def tiny_prepared_data(root: Path, patch_size: tuple[int, int, int] = TINY_PATCH) -> PreparedData:
    """The tiny synthetic task, fingerprinted, planned and loaded by the real data layer."""
    from automl_seg.config import DataSettings
    from automl_seg.data import prepare_data

    settings = DataSettings(
        dataset=TINY_DATASET, data_root=tiny_dataset(root), val_fraction=0.25, patch_size=patch_size
    )
    return prepare_data(settings, progress=False)


def search_context(
    strategy: SearchStrategy,
    space: SearchSpace,
    data: PreparedData,
    workdir: Path,
    *,
    seed: int = 0,
    budget: Budget = "quick",
    overrides: Mapping[str, Any] | None = None,
    space_args: Mapping[str, Any] | None = None,
    epoch_ended: Any = None,
) -> SearchContext:
    """What the engine hands ``strategy.search``: CPU, no resume, ``space_args`` defaulting to the space's."""
    import torch

    Path(workdir).mkdir(parents=True, exist_ok=True)
    ctx = SearchContext(
        space=space,
        space_args=dict(space_args) if space_args is not None else space.default_args(data.plan, budget),
        data=data,
        settings=strategy.settings(budget, dict(overrides or {})),
        seed=seed,
        device=torch.device("cpu"),
        workdir=Path(workdir),
        resume=False,
        run=RunInfo(
            run_id=new_run_id("search"),
            kind="search",
            dataset=data.plan.dataset,
            strategy=strategy.name,
            workdir=Path(workdir),
            settings_key=f"conformance-{strategy.name}-{seed}",
        ),
        progress=False,
        budget=budget,
    )
    if epoch_ended is not None:
        ctx.epoch_ended = epoch_ended
    return ctx


def installed(kind: Literal["strategy", "space", "exporter"], name: str) -> Any:
    """The ``kind`` named ``name`` that the installed plugins register (a clear error when none does)."""
    from automl_seg.plugins import load_plugins

    return load_plugins().get(kind, name)


def temporary_registry(root: Path) -> Registry:
    """An empty local registry in ``root`` (a temporary folder in tests)."""
    from automl_seg_registry import Registry

    return Registry.open(Path(root))


def register_outcome(
    registry: Registry, outcome: SearchOutcome, strategy: SearchStrategy, space: SearchSpace, ctx: SearchContext
) -> ArchitectureRecord:
    """Register the architecture record a search produces (no weights yet) with its artifacts, as
    ``automl-seg search`` does, and return the stored record."""
    import dataclasses

    from automl_seg.engine.pipeline import architecture_record, artifact_kind

    ctx = dataclasses.replace(ctx, space=space, run=dataclasses.replace(ctx.run, strategy=strategy.name))
    record = architecture_record(outcome, ctx)
    files = {name: (Path(path), artifact_kind(Path(path), name)) for name, path in outcome.artifacts.items()}
    return registry.register(record, files=files)


def install_plugin(project: Path, target: Path) -> Path:
    """``pip install`` the plugin project at ``project`` into the folder ``target`` (not the environment).

    The project is copied first so that the build leaves nothing in its source tree. Put ``target``
    on ``PYTHONPATH`` (subprocesses) or ``sys.path`` to make its entry points visible: the running
    environment stays as it was, which matters when several test runs share it."""
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="plugin-build-") as tmp:
        source = Path(tmp) / Path(project).name
        shutil.copytree(project, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-input"]
        done = subprocess.run([*command, "--target", str(target), str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install {project}: {done.stderr.strip()[-2000:]}")
    return Path(target)


def plugin_env(target: Path) -> dict[str, str]:
    """Environment variables under which a subprocess (e.g. the CLI) sees plugins installed by
    ``install_plugin`` into ``target``, besides everything this interpreter sees."""
    return {"PYTHONPATH": os.pathsep.join([str(target), *sys.path])}
