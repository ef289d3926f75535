"""Training: history written, reproducible with a seed, exact resume after a kill."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from automl_seg.engine.checkpoint import CHECKPOINT_NAME, load_checkpoint
from automl_seg.engine.history import plot_history, save_history_json
from automl_seg.engine.model import new_network
from automl_seg.engine.train import TrainResult, train_network
from automl_seg.errors import UserError
from automl_seg.plugins import load_plugins

CPU = torch.device("cpu")


class Killed(Exception):
    """Stands in for a process being killed between two epochs."""


def _train(
    prepared, tiny_train, workdir: Path, seed: int = 0, resume: bool = False, epoch_ended=None, **settings
) -> TrainResult:
    space = load_plugins().space("fixed")
    network = new_network(space, space.default_args(prepared.plan, "quick"), {}, seed)
    kwargs = {"epoch_ended": epoch_ended} if epoch_ended else {}
    return train_network(
        network, prepared, tiny_train(**settings), device=CPU, seed=seed, workdir=workdir, resume=resume,
        progress=False, **kwargs,
    )  # fmt: skip


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_train_two_epochs_writes_history(prepared, tiny_train, tmp_path: Path) -> None:
    result = _train(prepared, tiny_train, tmp_path / "run")
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert all(math.isfinite(row["loss"]) for row in result.history)
    assert result.history[0]["val_dice"] is None and 0.0 <= result.history[1]["val_dice"] <= 1.0
    assert {"lr", "time_s", "memory_mb"} <= set(result.history[0])
    assert (tmp_path / "run" / CHECKPOINT_NAME).is_file()
    json_path = save_history_json(result.history, tmp_path / "h.json")
    png_path = plot_history(result.history, tmp_path / "h.png")
    assert json.loads(json_path.read_text()) == result.history
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.params > 0 and result.peak_memory_mb > 0


def test_same_seed_same_weights_other_seed_differs(prepared, tiny_train, tmp_path: Path) -> None:
    first = _train(prepared, tiny_train, tmp_path / "a", epochs=1)
    second = _train(prepared, tiny_train, tmp_path / "b", epochs=1)
    other = _train(prepared, tiny_train, tmp_path / "c", epochs=1, seed=1)
    assert _same(first.state_dict, second.state_dict)
    assert not _same(first.state_dict, other.state_dict)


def test_resume_after_kill_matches_uninterrupted_run(prepared, tiny_train, tmp_path: Path) -> None:
    uninterrupted = _train(prepared, tiny_train, tmp_path / "full", epochs=3)

    def kill_after_first(epoch: int, metrics: object) -> None:
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        _train(prepared, tiny_train, tmp_path / "killed", epochs=3, epoch_ended=kill_after_first)
    resumed = _train(prepared, tiny_train, tmp_path / "killed", epochs=3, resume=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert _same(uninterrupted.state_dict, resumed.state_dict)


def test_cuda_precision_path_trains_and_resumes(prepared, tiny_train, tmp_path: Path, monkeypatch) -> None:
    """CUDA's float16 autocast + gradient scaler, taken on the CPU: finite losses, scaler state resumed."""
    from automl_seg.engine import precision

    monkeypatch.setattr(precision, "training_dtype", lambda device, enabled: torch.float16 if enabled else None)
    with pytest.raises(Killed):
        _train(prepared, tiny_train, tmp_path / "run", epochs=2, epoch_ended=lambda e, m: _raise_at(e, 1))
    scale = load_checkpoint(tmp_path / "run")["scaler"]["scale"]
    resumed = _train(prepared, tiny_train, tmp_path / "run", epochs=2, resume=True)
    assert scale > 1 and all(math.isfinite(row["loss"]) for row in resumed.history)


def _raise_at(epoch: int, kill_epoch: int) -> None:
    if epoch == kill_epoch:
        raise Killed


def test_resume_without_checkpoint_is_a_clear_error(prepared, tiny_train, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint"):
        _train(prepared, tiny_train, tmp_path / "empty", resume=True)


def test_resume_with_other_settings_is_refused(prepared, tiny_train, tmp_path: Path) -> None:
    _train(prepared, tiny_train, tmp_path / "run", epochs=1)
    with pytest.raises(UserError, match="other training settings"):
        _train(prepared, tiny_train, tmp_path / "run", epochs=1, lr=0.5, resume=True)


def test_warmup_rises_linearly_then_the_schedule_decays() -> None:
    from automl_seg.engine.settings import train_settings
    from automl_seg.engine.train import make_scheduler

    settings = train_settings("quick", overrides={"schedule": "cosine", "warmup_steps": 4})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler(optimizer, settings, total_steps=14)
    lrs = []
    for _ in range(14):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False))
    assert lrs[-1] < 0.05
