"""``--nproc``: a tiny DiNTS search as a 2-process DDP job on the CPU registers one architecture and
one trained model; a killed rank fails the job with one line naming it, and ``--resume`` finishes
it with the result of the uninterrupted job. Also the launcher's pieces on their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from automl_seg.data.synthetic import make_synthetic_msd
from automl_seg.engine.distributed import Distributed
from automl_seg.engine.launch import LAUNCHED_ENV, describe_failures, report_failure, without_nproc
from automl_seg.engine.train import check_world_size
from automl_seg.errors import UserError

STRATEGY = "strategy:\n  batch_size: 1\n  max_steps_per_epoch: 2\n  measure_memory: false\n"
TRAIN = "train:\n  iterations: 2\n  val_every: 10\n  val_cases: 1\n"


def _search_command(root: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "automl_seg", "search", "--strategy", "dints", "--dataset", "Task99_Synthetic",
        "--data-root", str(root / "data"), "--registry", str(root / "registry"), "--workdir", str(root / "work"),
        "--config", str(root / "run.yaml"), "--set", "epochs=4", "--set", "warmup_epochs=1", "--train-epochs", "2",
        "--patch-size", "16x16x16", "--device", "cpu", "--no-progress", "--nproc", "2", *extra,
    ]  # fmt: skip


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(root / "cache"), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def _task(root: Path) -> Path:
    make_synthetic_msd(root / "data", num_cases=5, shape=(16, 16, 16))
    (root / "run.yaml").write_text(STRATEGY + TRAIN)
    return root


def _records(root: Path) -> list[dict[str, Any]]:
    from automl_seg_registry import Registry

    with Registry.open(root / "registry") as registry:
        return [record.model_dump(mode="json") for record in registry.list()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = _task(tmp_path_factory.mktemp("ddp-search"))
    result = subprocess.run(_search_command(root), capture_output=True, text=True, env=_env(root), timeout=600)
    assert result.returncode == 0, result.stderr
    return {"root": root, "stdout": result.stdout, "stderr": result.stderr, "records": _records(root)}


@pytest.mark.timeout(600)
def test_search_nproc_2_registers_one_architecture_and_one_trained_model(uninterrupted: dict[str, Any]) -> None:
    records = uninterrupted["records"]
    assert [r["version"] for r in records] == [1, 2]
    architecture, trained = records
    assert architecture["parent"] is None and trained["parent"] == architecture["name"] + ":1"
    assert architecture["arch"] and trained["metrics"]["dice_mean"] is not None
    assert "trained model registered as" in uninterrupted["stdout"]
    # rank 0 alone logs: every epoch line once
    assert uninterrupted["stderr"].count("dints search epoch 4/4") == 1
    assert uninterrupted["stderr"].count("epoch 2/2: loss") == 1


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` is among ``pid``'s parents (``/proc/<pid>/stat``'s fourth field)."""
    while pid > 1:
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if pid == ancestor:
            return True
    return False


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The process of ``rank`` in the launcher's own job (its environment says so): never a rank of
    another job running on the machine at the same time."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(launcher):
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and f"{LAUNCHED_ENV}=1".encode() in env:
            if _descends_from(int(entry.name), launcher):
                return int(entry.name)
    return None


@pytest.mark.timeout(600)
def test_killed_rank_fails_the_job_cleanly_and_resume_finishes_it(
    uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    root = _task(tmp_path)
    job = subprocess.Popen(_search_command(root), stderr=subprocess.PIPE, text=True, env=_env(root))
    checkpoint = root / "work" / "search" / "dints_search.pt"
    # find rank 1 first (scanning /proc is slow), then kill it the moment the first epoch's checkpoint
    # lands: the search's later epochs take well under a second on a tiny task
    pid = None
    while pid is None and job.poll() is None:
        pid = _rank_pid(job.pid, 1)
    while not checkpoint.exists() and job.poll() is None:
        time.sleep(0.005)
    assert pid is not None and job.poll() is None, "the job ended before a rank could be killed"
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = job.communicate(timeout=120)
    assert time.monotonic() - killed < 60
    assert job.returncode == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: rank 1 died (signal SIGKILL); the other ranks were stopped; rerun it with --resume to continue"
    ]
    assert "Traceback" not in stderr
    assert _records(root) == []  # nothing registered, nothing half-registered

    resumed = subprocess.run(
        _search_command(root, "--resume"), capture_output=True, text=True, env=_env(root), timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "dints: resuming the search at epoch" in resumed.stderr
    records = _records(root)
    assert [r["version"] for r in records] == [1, 2]
    # the same job at the same world size: the same architecture and trained model as without the kill
    expected = uninterrupted["records"]
    assert records[0]["arch"] == expected[0]["arch"]
    assert records[1]["metrics"]["dice_mean"] == expected[1]["metrics"]["dice_mean"]


def test_without_nproc_drops_the_flag_in_both_spellings() -> None:
    assert without_nproc(["search", "--nproc", "2", "--seed", "1"]) == ["search", "--seed", "1"]
    assert without_nproc(["search", "--nproc=2", "--json"]) == ["search", "--json"]


def _failure(exitcode: int, recorded: dict[str, Any] | None = None, timestamp: int = 0) -> Any:
    data = {"automl_seg": recorded} if recorded else {}
    name = signal.Signals(-exitcode).name if exitcode < 0 else "<N/A>"
    return SimpleNamespace(exitcode=exitcode, error_file_data=data, timestamp=timestamp, signal_name=lambda: name)


def test_describe_failures_names_the_rank_that_ended_the_job() -> None:
    lost = {"kind": "peer", "message": "lost another rank of the job", "exit_code": 1}
    # the killed rank, not the rank that lost it (even though that one failed first)
    message, code = describe_failures({0: _failure(1, lost, timestamp=1), 1: _failure(-9, timestamp=2)})
    assert (message, code) == ("rank 1 died (signal SIGKILL); the other ranks were stopped", 1)
    # a rank that hung: the others timed out well before the agent killed it
    message, _ = describe_failures({0: _failure(1, lost, timestamp=10), 1: _failure(-9, timestamp=40)})
    assert message == "rank 1 hung: rank(s) 0 gave up waiting for it (collective timeout), then it was stopped"
    # nor a rank the agent stopped with SIGTERM
    assert describe_failures({0: _failure(143), 1: _failure(-9, timestamp=2)})[0].startswith("rank 1 died")
    # a user error keeps its exit code and message
    user = {"kind": "user", "message": "--resume: no checkpoint", "exit_code": 2}
    assert describe_failures({1: _failure(2, user), 0: _failure(2, user)}) == ("rank 0: --resume: no checkpoint", 2)


def test_report_failure_leaves_the_message_for_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert report_failure("bad flag", "user", 2) == "bad flag"  # not in a job: print it
    error_file = tmp_path / "error.json"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    assert report_failure("bad flag", "user", 2) is None  # under torchrun rank 0 says it
    assert report_failure("out of memory", "internal", 1) == "rank 1: out of memory"
    assert json.loads(error_file.read_text())["automl_seg"] == {
        "kind": "internal",
        "message": "out of memory",
        "exit_code": 1,
    }
    monkeypatch.setenv(LAUNCHED_ENV, "1")
    assert report_failure("out of memory", "internal", 1) is None  # the launcher says it


def test_resume_at_another_world_size_is_a_clear_error(tmp_path: Path) -> None:
    check_world_size(2, Distributed(rank=0, world_size=2), tmp_path)
    with pytest.raises(UserError, match="ran on 2 processes, this one on 1; resume it with --nproc 2"):
        check_world_size(2, Distributed(), tmp_path)
    with pytest.raises(UserError, match="ran on 1 process, this one on 2; resume it without --nproc"):
        check_world_size(1, Distributed(rank=1, world_size=2), tmp_path)


def test_nproc_zero_is_a_usage_error(cli, tiny_data_root: Path) -> None:
    result = cli("search", "--strategy", "fixed", "--dataset", "Task99_Synthetic", "--data-root", tiny_data_root,
                 "--nproc", "0")  # fmt: skip
    assert result.returncode == 2
    assert "--nproc 0: give the number of processes, 1 or more" in result.stderr
