"""Two ``automl-seg tune`` workers sharing one PostgreSQL study, with the registry index on the same
server: every trial recorded once, none lost, the best one registered and aliased ``best``.

Skipped with a message where no server answers on 127.0.0.1:5432, except under CI=true (fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from automl_seg.tune.storage import open_storage
from automl_seg.tune.study import load_study

pytestmark = pytest.mark.postgres

WORKERS = 2
TRIALS_EACH = 2
CONFIG = """
train:
  iterations: 1
  val_every: 1
  val_cases: 1
tune:
  params:
    patch_size: [16, 16, 16]
    batch_size: 1
"""


def test_two_workers_share_one_postgres_study(postgres_url: str, tmp_path: Path, tiny_root: Path) -> None:
    from automl_seg_registry import Registry

    config = tmp_path / "tune.yaml"
    config.write_text(CONFIG)
    registry = tmp_path / "registry"
    env = {**os.environ, "AUTOML_SEG_REGISTRY_INDEX": postgres_url}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "automl_seg.cli.main",
                "tune",
                "--strategy",
                "fixed",
                "--dataset",
                "Task99_Synthetic",
                "--data-root",
                str(tiny_root),
                "--registry",
                str(registry),
                "--storage",
                postgres_url,
                "--study",
                "shared",
                "--trials",
                str(TRIALS_EACH),
                "--train-epochs",
                "1",
                "--device",
                "cpu",
                "--pruner",
                "none",
                "--sampler",
                "random",
                "--seed",
                str(seed),
                "-c",
                str(config),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for seed in range(WORKERS)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "Traceback" not in err

    study = load_study(open_storage(postgres_url), "shared")
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(WORKERS * TRIALS_EACH))  # each once, none lost
    assert all(t.state == TrialState.COMPLETE for t in trials)
    refs = [t.user_attrs["ref"] for t in trials]
    assert len(set(refs)) == len(refs)

    with Registry.open(registry, postgres_url) as reg:
        trained = [r for r in reg.list(name="shared") if r.parent is not None]
        assert sorted(r.provenance["trial"] for r in trained) == list(range(WORKERS * TRIALS_EACH))
        assert all("tune:shared" in r.tags for r in trained)
        best = max(trials, key=lambda t: t.values[0])
        assert reg.get("shared@best").ref == best.user_attrs["ref"]
    last = json.loads(outputs[-1][0])
    assert last["study"] == "shared" and len(last["trials"]) >= TRIALS_EACH
    assert optuna.get_all_study_summaries(open_storage(postgres_url))[0].n_trials == WORKERS * TRIALS_EACH
