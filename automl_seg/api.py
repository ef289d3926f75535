"""The public engine helpers for plugins: everything a strategy or space may use besides the hooks.

A plugin imports from automl-seg only this module, :mod:`automl_seg.hookspecs`,
:mod:`automl_seg.interfaces` and :mod:`automl_seg.errors` (its tests may use the conformance kit,
:mod:`automl_seg.testing`). Everything else in ``automl_seg`` is private and may change without
notice; import-linter contracts in ``pyproject.toml`` keep the built-in plugins and the example to
this rule. What is here follows ``API_VERSION``: a change that breaks a plugin raises it.

Training a network
    ``new_network`` builds a seeded, freshly initialised network from a space; ``train_network``
    trains it on ``ctx.data`` with a ``TrainSettings`` (DiceCE, SGD/AdamW, the engine's learning-rate
    schedule ``lr_factor``, AMP on CUDA, a checkpoint per epoch, exact resume) and returns a
    ``TrainResult`` (weights, history, last validation).
Settings
    ``build_settings`` validates a pydantic model from a preset < a config section < overrides and
    turns pydantic's errors into one ``ConfigError`` line (``describe_validation_error`` does only
    the wording). ``Settings`` is a pydantic base refusing unknown keys; ``Budget`` names a budget preset.
Reproducibility and checkpoints
    ``seed_everything`` seeds Python, NumPy and torch; ``rng_states``/``set_rng_states`` put every
    generator's state in a checkpoint and back; ``atomic_torch_save`` writes a file that is either
    whole or absent; ``read_checkpoint`` loads one with ``weights_only`` (a clear error when unreadable).
Devices and precision
    ``resolve_device`` maps ``auto``/``cpu``/``cuda`` to a device; ``mixed_precision`` and
    ``grad_scaler`` are the engine's float16 autocast and gradient scaler on CUDA (no-ops on the CPU).
Compute accounting
    ``Stopwatch`` reads wall and device seconds (on the CPU the process' CPU time, on CUDA the time the
    GPU is held); a strategy with a ``time_budget_s`` setting checks its budget with it.
Progress
    ``progress_bar`` is the engine's rich bar (stderr, ETA); ``track`` wraps a loop in one. Show it
    only when ``ctx.progress`` is true.
CPU speed and memory
    ``channels_last_on_cpu`` and ``onednn_conv3d`` make a 3D network faster on the CPU with the same
    state dict; ``exporting`` says whether torch is tracing or exporting (eager-only tricks step
    aside then). ``peak_rss_mb``, ``reset_peak_rss``, ``current_rss_mb`` and
    ``exact_rss_environment`` measure a process's training memory on the CPU.
Several processes (DDP)
    ``Distributed`` is the run's place in a DDP job (``ctx.dist``: rank, world size, ``is_main``):
    ``wrap`` puts a model in DistributedDataParallel, ``shard`` deals cases to the ranks the way
    ``DistributedSampler`` deals indices, ``rank_seed`` seeds a rank's augmentation,
    ``average_gradients``, ``mean``, ``broadcast`` and ``gather`` are the collectives a strategy
    needs; a world of one makes them all no-ops. Rank 0 alone writes checkpoints and artefacts;
    ``check_world_size`` refuses to resume a checkpoint made at another world size.
    ``process_group`` joins the job torchrun started. ``train_network`` and the engine take ``dist``.
Data
    ``PreparedData`` (what ``ctx.data`` is) and ``Plan`` (``ctx.data.plan``); see
    ``docs/writing-plugins.md`` for their fields and loaders.
Trained models (for observers and exporters)
    ``trained_network`` builds a registry record's network through its installed search space and
    loads a weights file into it; ``record_plan`` is the record's preprocessing plan, and
    ``sliding_window_logits`` runs a network over a preprocessed volume with that plan's windows,
    as ``automl-seg predict`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from automl_seg import API_VERSION
from automl_seg.compute import Stopwatch
from automl_seg.config import Budget, Settings, build_settings, describe_validation_error
from automl_seg.data.models import Plan
from automl_seg.data.prepared import PreparedData
from automl_seg.engine.checkpoint import atomic_torch_save, read_checkpoint
from automl_seg.engine.devices import resolve_device, rng_states, seed_everything, set_rng_states
from automl_seg.engine.distributed import Distributed, process_group
from automl_seg.engine.inference import sliding_window_logits
from automl_seg.engine.model import new_network, record_plan
from automl_seg.engine.precision import grad_scaler, mixed_precision
from automl_seg.engine.settings import Schedule, TrainSettings
from automl_seg.engine.train import EpochCallback, TrainResult, check_world_size, lr_factor, train_network
from automl_seg.layout import channels_last_on_cpu, exporting
from automl_seg.memory import current_rss_mb, exact_rss_environment, peak_rss_mb, reset_peak_rss
from automl_seg.onednn import onednn_conv3d
from automl_seg.progress import progress_bar, track

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord

__all__ = [
    "API_VERSION",
    "Budget",
    "Distributed",
    "EpochCallback",
    "Plan",
    "PreparedData",
    "Schedule",
    "Settings",
    "Stopwatch",
    "TrainResult",
    "TrainSettings",
    "atomic_torch_save",
    "build_settings",
    "channels_last_on_cpu",
    "check_world_size",
    "current_rss_mb",
    "describe_validation_error",
    "exact_rss_environment",
    "exporting",
    "grad_scaler",
    "lr_factor",
    "mixed_precision",
    "new_network",
    "onednn_conv3d",
    "peak_rss_mb",
    "process_group",
    "progress_bar",
    "read_checkpoint",
    "record_plan",
    "reset_peak_rss",
    "resolve_device",
    "rng_states",
    "seed_everything",
    "set_rng_states",
    "sliding_window_logits",
    "track",
    "train_network",
    "trained_network",
]


def trained_network(record: ArchitectureRecord, weights: Path) -> nn.Module:
    """``record``'s network, built by its installed search-space plugin, with the state dict in the file
    ``weights``, in eval mode on the CPU. A missing plugin, another plugin version, unreadable weights
    or weights that do not fit are one-line errors (``RegistryError``)."""
    from automl_seg.engine.model import network_from_file
    from automl_seg.plugins import load_plugins

    return network_from_file(record, weights, load_plugins()).eval()
