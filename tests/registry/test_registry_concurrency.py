"""Reliability: many writers at once, and writers killed mid-registration."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from automl_seg_registry import Registry

WRITER = Path(__file__).with_name("registry_writer.py")
PROCESSES, PER_PROCESS, NAMES = 8, 25, 4
log = logging.getLogger(__name__)


def _writer(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WRITER), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_eight_processes_register_two_hundred_records(
    registry_dir: Path, index_url: str | None, record_property
) -> None:
    """The writers also race to create the index itself: nothing exists before they start."""
    started = time.perf_counter()
    workers = [
        _writer("bulk", registry_dir, index_url or "", worker, PER_PROCESS, NAMES) for worker in range(PROCESSES)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    wall = time.perf_counter() - started
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    written = [json.loads(line) for out, _err in outputs for line in out.splitlines()]
    busy = max(item["t1"] for item in written) - min(item["t0"] for item in written)
    record_property("wall_s", round(wall, 2))
    log.warning(
        "%d processes x %d records: %.2f s wall with process start-up, %.2f s from first to last registration",
        PROCESSES, PER_PROCESS, wall, busy,
    )  # fmt: skip

    with Registry.open(registry_dir, index_url) as registry:
        stored = registry.list()
        assert len(stored) == len(written) == PROCESSES * PER_PROCESS
        versions: dict[str, list[int]] = defaultdict(list)
        for record in stored:
            versions[record.name].append(record.version)
        for name, numbers in versions.items():
            assert sorted(numbers) == list(range(1, len(numbers) + 1)), name  # unique and gap-free
        by_ref = {record.ref: record for record in stored}
        for item in written:
            assert by_ref[item["ref"]].artifacts[0].sha256 == item["sha256"]
        assert registry.verify() == []
        assert list((registry_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize("stage", ["copy", "publish"])
def test_writer_killed_mid_registration_leaves_no_partial_record(
    registry_dir: Path, index_url: str | None, stage: str, sample_record, weights: Path
) -> None:
    with Registry.open(registry_dir, index_url) as registry:
        kept = registry.register(sample_record("kept"), {"weights": (weights, "weights")})
    marker = registry_dir.parent / "marker"
    victim = _writer("hang", registry_dir, index_url or "", stage, marker)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert victim.poll() is None, victim.communicate()[1]
        assert time.monotonic() < deadline, "writer never reached the kill point"
        time.sleep(0.05)
    if stage == "publish":  # the record directory is in place (pending), only the index commit is missing
        assert (registry_dir / "records" / "killed" / ".pending-1" / "files").is_dir()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)

    with Registry.open(registry_dir, index_url) as registry:
        assert [record.ref for record in registry.list()] == [kept.ref]
        assert registry.verify() == []
        assert not (registry_dir / "records" / "killed").exists()
        assert list((registry_dir / "tmp").iterdir()) == []
        again = registry.register(sample_record("killed"), {"weights": (weights, "weights")})  # lock was released
        assert again.ref == "killed:1"
        assert registry.artifact_path(again.ref, "weights").read_bytes() == weights.read_bytes()
