"""Tune workers whose trials are DDP jobs: two workers share one study, one of them runs its trial
on two processes (``--nproc 2``), the other on one; both trials complete and register a model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = """
train:
  iterations: 1
  val_every: 1
tune:
  params:
    patch_size: [16, 16, 16]
    batch_size: 1
"""


@pytest.mark.timeout(600)
def test_two_workers_one_with_a_ddp_trial_share_a_study(tmp_path: Path, tiny_root: Path) -> None:
    from automl_seg_registry import Registry

    config = tmp_path / "tune.yaml"
    config.write_text(TINY)
    registry = tmp_path / "registry"
    base = [
        sys.executable, "-m", "automl_seg", "tune", "--strategy", "fixed", "--dataset", "Task99_Synthetic",
        "--data-root", str(tiny_root), "--registry", str(registry), "--trials", "1", "--train-epochs", "1",
        "--device", "cpu", "--study", "shared", "--sampler", "random", "-c", str(config), "--json",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen([*base, "--seed", "1", "--nproc", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env),
        subprocess.Popen([*base, "--seed", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env),
    ]  # fmt: skip
    outputs = [worker.communicate(timeout=540) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    ddp_report = json.loads(outputs[0][0])  # rank 0 alone printed the report
    assert sum(ddp_report["counts"].values()) >= 1
    with Registry.open(registry) as reg:
        trained = [r for r in reg.list(name="shared") if r.parent is not None]
    assert sorted(r.provenance.get("processes", 1) for r in trained) == [1, 2]
    assert sorted(r.provenance["trial"] for r in trained) == [0, 1]
