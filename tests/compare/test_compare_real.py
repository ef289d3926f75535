"""``automl-seg compare`` on a few real Hippocampus cases through the CLI: two strategies, tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.integration
def test_compare_on_real_hippocampus(cli, real_data_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "data:\n  patch_size: [32, 32, 32]\n"
        "train:\n  iterations: 3\n  val_every: 10\n  val_cases: 1\n"
        "strategies:\n  dints:\n    epochs: 2\n    warmup_epochs: 1\n    max_steps_per_epoch: 1\n    batch_size: 1\n"
        "    measure_memory: false\n"
    )
    registry = tmp_path / "registry"
    result = cli(
        "compare", "--dataset", "Task04_Hippocampus", "--data-root", real_data_root, "--strategies", "dints,fixed",
        "--seeds", "1", "--max-cases", "8", "--train-epochs", "1", "--config", config, "--registry", registry,
        "--workdir", tmp_path / "work", "--device", "cpu", "--no-progress", "--json", timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["heldout_cases"]) == 2 and {r["strategy"] for r in report["runs"]} == {"dints", "fixed"}
    for row in report["runs"]:
        assert set(row["dice_per_class"]) == {"Anterior", "Posterior"} and row["retrain_device_s"] > 0
    assert report["tests"][0]["cases"] == 2 and 0 <= report["tests"][0]["p_value"] <= 1
    assert Path(report["folder"], "dice_vs_time.png").is_file()
    verified = cli("registry", "verify", "--registry", registry)
    assert verified.returncode == 0, verified.stderr
