"""A checkpoint write killed with SIGKILL leaves its temporary file behind; the next save or read of
that checkpoint (the next run, ``--resume``) sweeps it, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from automl_seg.engine.checkpoint import CHECKPOINT_NAME, has_checkpoint, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.timeout(120)

#: Saves a checkpoint whose pickling never ends (after writing a marker), so the test can SIGKILL it mid-write.
HANG_IN_SAVE = """
import sys, time
from pathlib import Path
from automl_seg.engine.checkpoint import save_checkpoint

class Stuck:
    def __reduce__(self):
        Path(sys.argv[2]).write_text("writing")
        while True:
            time.sleep(1)

save_checkpoint(Path(sys.argv[1]), {"epoch": 3, "stuck": Stuck()})
"""


def _partial_writes(workdir: Path) -> list[Path]:
    return sorted(workdir.glob(f".{CHECKPOINT_NAME}.*.tmp"))


def test_a_write_killed_mid_way_is_swept_by_the_next_run(tmp_path: Path) -> None:
    workdir, marker = tmp_path / "work", tmp_path / "marker"
    save_checkpoint(workdir, {"epoch": 2})
    writer = subprocess.Popen([sys.executable, "-c", HANG_IN_SAVE, str(workdir), str(marker)])
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert len(_partial_writes(workdir)) == 1  # what kill -9 leaves
    assert load_checkpoint(workdir)["epoch"] == 2  # --resume: the last complete checkpoint
    assert _partial_writes(workdir) == []


def test_only_partial_writes_of_the_checkpoint_are_swept(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    leftover = workdir / f".{CHECKPOINT_NAME}.k1ll3d_x.tmp"
    leftover.write_bytes(b"")
    others = [workdir / ".search.pt.abcdefgh.tmp", workdir / f"{CHECKPOINT_NAME}.tmp", workdir / "notes.tmp"]
    for path in others:
        path.write_text("not a partial checkpoint write")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    link = workdir / f".{CHECKPOINT_NAME}.l1nk3d_x.tmp"
    link.symlink_to(outside)
    assert not has_checkpoint(workdir)  # a fresh run looks, and sweeps
    assert not leftover.exists() and all(path.exists() for path in others)
    assert link.is_symlink() and outside.read_text() == "keep"
    save_checkpoint(workdir, {"w": torch.ones(2)})
    assert torch.equal(load_checkpoint(workdir)["w"], torch.ones(2))
