"""A short DiNTS run on the real Hippocampus data through the CLI: search -> decode -> register -> retrain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.integration
def test_dints_search_on_real_hippocampus(cli, real_data_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "strategy:\n  max_steps_per_epoch: 2\n  batch_size: 1\n"
        "train:\n  iterations: 3\n  val_every: 10\n  val_cases: 2\n"
    )
    registry = tmp_path / "registry"
    searched = cli(
        "search", "--strategy", "dints", "--dataset", "Task04_Hippocampus", "--data-root", real_data_root,
        "--max-cases", "6", "--patch-size", "32x32x32", "--set", "epochs=2", "--set", "warmup_epochs=1",
        "--set", "memory_budget=0.5", "--train-epochs", "1", "--config", config, "--registry", registry,
        "--workdir", tmp_path / "work", "--device", "cpu", "--no-progress", "--json",
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    result = json.loads(searched.stdout)
    trained = result["trained"]
    assert set(result["arch"]) == {"arch_code_a", "arch_code_c", "node_a"}
    memory = result["search_metrics"]["memory"]
    assert memory["requested"] == 0.5 and 0 < memory["estimated"] <= 1 and memory["measured_mb"] > 0
    assert trained["parent"] == result["architecture"]
    assert set(trained["metrics"]["dice_per_class"]) == {"Anterior", "Posterior"}
    listed = cli("registry", "verify", "--registry", registry)
    assert listed.returncode == 0, listed.stderr
