"""``automl-seg tune`` and ``tune show`` through the real CLI: bad input, a real short study, show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from automl_seg.tune.run import TuneRequest, run_tune

from .conftest import FakeRunner

pytestmark = pytest.mark.cli_in_process  # many CLI calls: no Python start for each

TINY = """
train:
  iterations: 1
  val_every: 1
tune:
  params:
    patch_size: [16, 16, 16]
    batch_size: 1
"""


def one_line_error(proc, text: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert text in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "tune.yaml"
    path.write_text(TINY)
    return path


def test_bad_input_is_one_line(cli, tmp_path: Path, host) -> None:
    registry = tmp_path / "r"
    base = ["tune", "--strategy", "fixed", "--dataset", "Task99_Synthetic", "--registry", str(registry)]
    one_line_error(cli(*base, "--trials", "0"), "--trials must be at least 1 (got 0)")
    known = "known for strategy 'fixed' on space 'fixed': quick, standard, full"
    one_line_error(cli(*base, "--budget", "medium"), f"unknown budget 'medium'; {known}")
    one_line_error(cli(*base, "--seed", "-5"), "seed: Input should be greater than or equal to 0")
    if not torch.cuda.is_available():
        one_line_error(cli(*base, "--device", "cuda"), "CUDA is not available")
    unreachable = cli(*base, "--trials", "1", "--storage", "postgresql://nobody@127.0.0.1:1/nodb")
    one_line_error(unreachable, "cannot reach tuning storage postgresql://nobody@127.0.0.1:1/nodb")
    assert "tuned hyper-parameters" not in unreachable.stderr  # refused before any work is shown
    bad = tmp_path / "bad.yaml"
    bad.write_text("tune:\n  params:\n    learning_rate: 0.1\n")
    one_line_error(cli(*base, "-c", bad), "unknown tunable parameter(s) learning_rate; known:")
    run_tune(TuneRequest(strategy="fake", dataset="D1", trials=1, study="s", registry=registry), host, FakeRunner())
    one_line_error(cli(*base, "--study", "s"), "study 's' tunes strategy 'fake' (asked: 'fixed')")
    one_line_error(cli("tune", "show", "--study", "nope", "--registry", registry), "no study named 'nope'")
    show = ["tune", "show", "--study", "s", "--registry", registry, "--png"]
    one_line_error(cli(*show, tmp_path / "front.txt"), "give a file name ending in .png")
    one_line_error(cli(*show, tmp_path / "missing" / "front.png"), "output folder")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line_error(cli("tune", *base[1:], "--storage", f"sqlite:///{a_file}/sub/t.db"), "tuning storage")


def test_show_prints_trials_best_and_importances(cli, tmp_path: Path, host) -> None:
    registry = tmp_path / "r"
    request = TuneRequest(strategy="fake", dataset="D", trials=4, study="s", registry=registry, sampler="random",
                          pruner="none")  # fmt: skip
    run_tune(request, host, FakeRunner(fail_on=(2,)))
    proc = cli("tune", "show", "--study", "s", "--registry", registry, env={"COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    for text in ("study s", "objective dice", "3 complete", "1 fail", "plugin exploded in trial 2",
                 "best trial #", "parameter importance", "alpha"):  # fmt: skip
        assert text in proc.stdout, text
    data = json.loads(cli("tune", "show", "--study", "s", "--registry", registry, "--json").stdout)
    assert [t["state"] for t in data["trials"]].count("COMPLETE") == 3
    assert {"alpha", "width", "lr"} <= set(data["importances"])


def test_real_short_study_registers_the_best(cli, tmp_path: Path, tiny_root: Path, tiny_config: Path) -> None:
    from automl_seg_registry import Registry

    registry = tmp_path / "r"
    proc = cli(
        "tune", "--strategy", "fixed", "--dataset", "Task99_Synthetic", "--data-root", tiny_root,
        "--registry", registry, "--trials", "2", "--train-epochs", "1", "--device", "cpu", "--study", "tiny",
        "--sampler", "random", "-c", tiny_config, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["counts"] == {"COMPLETE": 2}
    best = data["best"][0]
    assert data["best_ref"] == best["ref"]
    with Registry.open(registry) as reg:
        record = reg.get("tiny@best")
        assert record.ref == best["ref"]
        assert record.provenance["study"] == "tiny" and record.provenance["trial"] == best["number"]
        assert record.provenance["params"]["train"]["lr"] == pytest.approx(best["params"]["lr"])
        assert "tune:tiny" in record.tags
        assert record.metrics.dice_mean == pytest.approx(best["dice"])
