"""Short searches on tiny synthetic data: the loss falls, resume is exact, budgets order the memory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from automl_seg_dints.calibrate import MemoryCalibration
from automl_seg_dints.space import DintsSpace
from automl_seg_dints.strategy import DintsStrategy

from automl_seg.config import DataSettings
from automl_seg.data.synthetic import make_synthetic_msd
from automl_seg.errors import ConfigError, UserError
from automl_seg.interfaces import MemoryFigures, RunInfo, SearchContext, SearchOutcome

SPACE_ARGS = {"num_blocks": 3, "num_depths": 3, "channel_mul": 0.125}
FAST = {"batch_size": 1, "max_steps_per_epoch": 4, "measure_memory": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from automl_seg.data import prepare_data

    root = tmp_path_factory.mktemp("dints-data")
    make_synthetic_msd(root, num_cases=6, shape=(20, 20, 20))
    return prepare_data(
        DataSettings(dataset="Task99_Synthetic", data_root=root, patch_size=(16, 16, 16)), progress=False
    )


class _Killed(Exception):
    pass


def _search(
    data: Any,
    workdir: Path,
    overrides: dict,
    *,
    resume: bool = False,
    kill_after: int | None = None,
    seen: list | None = None,
) -> SearchOutcome:
    space, strategy = DintsSpace(), DintsStrategy()
    args = {**space.default_args(data.plan, "quick"), **SPACE_ARGS}

    def epoch_ended(epoch: int, metrics: dict) -> None:
        if seen is not None:
            seen.append((epoch, metrics))
        if kill_after is not None and epoch == kill_after:
            raise _Killed

    ctx = SearchContext(
        space=space,
        space_args=args,
        data=data,
        settings=strategy.settings("quick", {**FAST, **overrides}),
        seed=3,
        device=torch.device("cpu"),
        workdir=workdir,
        resume=resume,
        run=RunInfo(run_id="t", kind="search"),
        epoch_ended=epoch_ended,
    )
    return strategy.search(ctx)


def test_search_lowers_the_loss_and_reports(data: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seen: list = []
    with caplog.at_level("INFO", logger="automl_seg_dints.search"):
        outcome = _search(data, tmp_path, {"epochs": 5, "warmup_epochs": 1, "measure_memory": True}, seen=seen)
    assert "dints warm-up epoch 1/5: weight loss" in caplog.text
    assert "dints search epoch 5/5: weight loss" in caplog.text and "arch loss" in caplog.text
    assert f"MB estimated), {outcome.memory.measured_mb:.4g}MB measured; budget 0.5" in caplog.text
    history = outcome.history
    assert [e for e, _ in seen] == [0, 1, 2, 3, 4] and all(isinstance(v, float) for v in seen[0][1].values())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["arch_seg_loss"] < history[1]["arch_seg_loss"]
    assert history[0]["arch_loss"] is None and history[1]["ramp"] == pytest.approx(0.25)
    assert len(history[-1]["path_probs"]) == 3 and len(history[-1]["op_probs"][0][0]) == 5
    for key in ("requested", "estimated", "estimated_mb", "measured_mb"):
        assert getattr(outcome.memory, key) > 0, key
    for key in ("topology_png", "search_curves_png"):
        assert outcome.artifacts[key].read_bytes()[:4] == b"\x89PNG"
    assert outcome.artifacts["search_history"].is_file()
    network = DintsSpace().build_network(outcome.space_args, outcome.arch)
    assert network(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)


def test_resume_reaches_the_same_architecture(data: Any, tmp_path: Path) -> None:
    settings = {"epochs": 3, "warmup_epochs": 1}
    straight = _search(data, tmp_path / "straight", settings)
    with pytest.raises(_Killed):
        _search(data, tmp_path / "killed", settings, kill_after=1)
    resumed = _search(data, tmp_path / "killed", settings, resume=True)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert resumed.arch == straight.arch
    assert resumed.history[-1]["path_probs"] == straight.history[-1]["path_probs"]
    with pytest.raises(ConfigError, match="other settings"):
        _search(data, tmp_path / "killed", {"epochs": 4, "warmup_epochs": 1}, resume=True)
    (tmp_path / "killed" / "dints_search.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot be read"):
        _search(data, tmp_path / "killed", settings, resume=True)


@pytest.mark.parametrize(("amp", "expected"), [(True, torch.float16), (False, torch.float32)])
def test_search_runs_the_cuda_precision_path(
    data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amp: bool, expected: torch.dtype
) -> None:
    """CUDA's path (float16 forward passes, one gradient scaler per optimizer), taken on the CPU here."""
    from automl_seg.engine import precision

    monkeypatch.setattr(precision, "training_dtype", lambda device, enabled: torch.float16 if enabled else None)
    conv_outputs: set[torch.dtype] = set()

    def record(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(module, torch.nn.Conv3d) and module.training:
            conv_outputs.add(output.dtype)

    with torch.nn.modules.module.register_module_forward_hook(record):
        outcome = _search(data, tmp_path, {"epochs": 3, "warmup_epochs": 1, "amp": amp})
    assert conv_outputs == {expected}
    assert outcome.history[-1]["train_loss"] < outcome.history[0]["train_loss"]
    assert outcome.history[-1]["arch_seg_loss"] is not None
    assert all(torch.isfinite(torch.tensor(h["path_probs"])).all() for h in outcome.history)
    saved = torch.load(tmp_path / "dints_search.pt", weights_only=False)
    assert saved["weight_scaler"].get("scale", 1.0) > 1 if amp else saved["weight_scaler"] == {}


def test_budgets_order_the_memory(data: Any, tmp_path: Path) -> None:
    settings = {"epochs": 4, "warmup_epochs": 0, "arch_lr": 0.1}
    outcomes = [
        _search(data, tmp_path / str(b), {**settings, "memory_budget": b, "measure_memory": b != 0.5})
        for b in (0.2, 0.5, 0.8)
    ]
    estimated = [o.memory.estimated for o in outcomes]
    measured = [outcomes[0].memory.measured_mb, outcomes[2].memory.measured_mb]
    assert estimated == sorted(estimated) and estimated[0] < estimated[-1], estimated
    assert measured[0] < measured[-1], measured


def test_patch_and_budget_errors(data: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="smallest architecture"):
        _search(data, tmp_path, {"memory_budget": "0.001MB"})
    with pytest.raises(ConfigError, match="not divisible by 32"):
        _bad_depth(data, tmp_path)


def _bad_depth(data: Any, workdir: Path) -> None:
    space, strategy = DintsSpace(), DintsStrategy()
    args = {**space.default_args(data.plan, "quick"), **SPACE_ARGS, "num_depths": 4}
    ctx = SearchContext(
        space=space,
        space_args=args,
        data=data,
        settings=strategy.settings("quick", FAST),
        seed=0,
        device=torch.device("cpu"),
        workdir=workdir,
        resume=False,
        run=RunInfo(run_id="t", kind="s"),
    )
    strategy.search(ctx)


@pytest.mark.parametrize("budget", [0.2, 0.8])
def test_budget_decode_lands_in_its_band(data: Any, tmp_path: Path, budget: float) -> None:
    settings = {"epochs": 2, "warmup_epochs": 1, "decode": "budget", "budget_tolerance": 0.1, "memory_budget": budget}
    outcome = _search(data, tmp_path, settings)
    slack = 0.01  # path shares are summed on a 0.001 grid
    assert budget - 0.1 - slack <= outcome.memory.estimated <= budget + slack
    assert all(budget - 0.1 - slack <= h["memory_decoded"] <= budget + slack for h in outcome.history)


def test_unknown_decode_is_a_config_error(data: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="decode"):
        _search(data, tmp_path, {"decode": "greedy"})


def test_decode_over_budget_is_a_warning_with_the_remedy(caplog: pytest.LogCaptureFixture) -> None:
    from automl_seg_dints.search import _warn_over_budget

    memory = MemoryFigures(estimated=0.3, estimated_mb=3.0, requested=0.1, requested_mb=1.0)
    with caplog.at_level(logging.WARNING):
        _warn_over_budget(memory, "probability")
        _warn_over_budget(memory.model_copy(update={"estimated": 0.149}), "probability")  # within half: no warning
        _warn_over_budget(memory.model_copy(update={"requested": 0.5, "estimated": 0.543}), "probability")  # soft
    assert len(caplog.records) == 1
    assert "0.300 of the supernet, 3MB) is above the budget (0.100, 1MB)" in caplog.text
    assert "decode: budget" in caplog.text
    _warn_over_budget(memory.model_copy(update={"budget_mb": 150.0, "predicted_mb": 212.4}), "probability")
    assert "0.300 of the supernet, 212.4MB of training memory) is above the budget (0.100, 150MB)" in caplog.text


def _fake_measurement(args: dict, arch: dict, batch_size: int, patch: Any, device: torch.device) -> float:
    """Training memory that grows with the active paths: 100MB plus 10MB a path."""
    return 100.0 + 10.0 * float(np.sum(arch["arch_code_a"]))


def test_megabyte_budget_is_training_memory(
    data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from automl_seg_dints import calibrate, search

    monkeypatch.setattr(calibrate, "measure_training_memory_mb", _fake_measurement)
    monkeypatch.setattr(search, "measure_training_memory_mb", _fake_measurement)
    settings = {"epochs": 2, "warmup_epochs": 1, "memory_budget": "200MB", "measure_memory": True}
    caplog.set_level("INFO", logger="automl_seg_dints.search")
    outcome = _search(data, tmp_path / "run", settings)
    metrics = outcome.memory.figures()
    saved = MemoryCalibration.model_validate_json(outcome.artifacts["memory_calibration"].read_text())
    assert saved.measured_mb == (130.0, 310.0)  # 3 blocks of one path; all 3 x 7 paths
    full_mb = metrics["full_estimated_mb"]
    assert metrics["requested"] == pytest.approx(saved.estimated_for(200.0) / full_mb)
    assert metrics["budget_mb"] == 200.0
    assert metrics["predicted_mb"] == pytest.approx(saved.measured_for(metrics["estimated_mb"]))
    assert metrics["measured_mb"] == _fake_measurement({}, outcome.arch, 1, None, torch.device("cpu"))
    assert f"{metrics['predicted_mb']:.4g}MB of training memory predicted" in caplog.text
    assert "MB measured; budget 200MB" in caplog.text

    # a resumed search reads the budget as the original run did, without measuring again
    with pytest.raises(_Killed):
        _search(data, tmp_path / "killed", settings, kill_after=0)
    monkeypatch.setattr(search, "calibrate", lambda *a: pytest.fail("measured again on resume"))
    resumed = _search(data, tmp_path / "killed", settings, resume=True)
    assert resumed.memory.requested == metrics["requested"]

    # without measurements the megabytes are the cost model's, and the log says so
    unmeasured = _search(data, tmp_path / "unmeasured", {**settings, "memory_budget": "1MB", "measure_memory": False})
    assert unmeasured.memory.requested == pytest.approx(1.0 / full_mb)
    assert "1MB budget is read on the cost model's scale" in caplog.text
