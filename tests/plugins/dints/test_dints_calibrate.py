"""Calibration of megabyte budgets: the reference architectures and their real measurement."""

from __future__ import annotations

import torch
from automl_seg_dints.calibrate import calibrate, reference_archs
from automl_seg_dints.space import DintsSpaceArgs
from automl_seg_dints.supernet import FastTopologySearch, MemoryEstimator
from automl_seg_dints.topology import OPS, Topology

ARGS = DintsSpaceArgs(in_channels=1, num_classes=3, num_blocks=3, num_depths=3, channel_mul=0.125)
PATCH = (16, 16, 16)


def _estimator(batch_size: int = 2) -> MemoryEstimator:
    space = FastTopologySearch(ARGS.num_blocks, ARGS.num_depths, ARGS.channel_mul)
    return MemoryEstimator(space, batch_size, PATCH)


def test_reference_archs_are_the_sparsest_and_the_densest() -> None:
    estimator = _estimator()
    sparsest, densest = reference_archs(ARGS, estimator)
    paths = Topology(ARGS.num_depths).num_paths
    assert densest.arch_code_a.sum() == ARGS.num_blocks * paths
    assert (densest.arch_code_c == estimator.heaviest_ops().numpy()).all()
    assert OPS[0] == "skip_connect" and (sparsest.arch_code_c == 0).all()
    assert (sparsest.arch_code_a.sum(1) == 1).all()  # one path a block connects input to output
    sizes = [estimator.discrete_mb(a.arch_code_a, a.arch_code_c) for a in (sparsest, densest)]
    assert sizes[0] < sizes[1]


def test_calibrate_measures_both_architectures() -> None:
    """Two real measurements (two CPU subprocesses): training memory grows with the estimate."""
    calibration = calibrate(ARGS, _estimator(), 2, PATCH, torch.device("cpu"))
    assert calibration.usable
    assert calibration.measured_mb[0] > calibration.estimated_mb[0]  # stems, weights, workspace: not in the model
    middle = sum(calibration.estimated_mb) / 2
    assert calibration.measured_mb[0] < calibration.measured_for(middle) < calibration.measured_mb[1]


def test_cpu_measurement_runs_in_a_child_whose_rss_tracks_live_tensors(monkeypatch) -> None:
    import subprocess

    from automl_seg_dints import measure

    from automl_seg.memory import EXACT_RSS_ENV

    seen: dict = {}

    def child(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        seen.update(kwargs)
        return subprocess.CompletedProcess(command, 0, stdout='{"peak_mb": 12.5}\n', stderr="")

    monkeypatch.setattr(measure.subprocess, "run", child)
    sparsest, _ = reference_archs(ARGS, _estimator())
    peak = measure.measure_training_memory_mb(ARGS.model_dump(), sparsest.to_payload(), 2, PATCH, torch.device("cpu"))
    assert peak == 12.5
    assert EXACT_RSS_ENV.items() <= seen["env"].items() and "PATH" in seen["env"]
