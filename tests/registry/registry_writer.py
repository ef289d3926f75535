"""Registry writer run as a separate process by the concurrency and crash tests (not a test module).

    python registry_writer.py bulk ROOT INDEX_URL WORKER COUNT NAMES
    python registry_writer.py hang ROOT INDEX_URL STAGE MARKER

``bulk`` registers COUNT records spread over NAMES shared names, each with its own artifact, and
prints one JSON line per record (ref, sha256 of the source, start and end time). ``hang`` starts one registration and
stops forever at STAGE (``copy``: half-way through copying the artifact; ``publish``: after the
record directory was renamed into place, before the index commit), after writing MARKER, so the
test can SIGKILL it there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from automl_seg_registry import ArchitectureRecord, Metrics, Registry
from automl_seg_registry import files as registry_files
from automl_seg_registry import rows as registry_rows
from automl_seg_registry.schema import DatasetRef, SpaceRef, StrategyRef


def sample_record(
    name: str = "dints-Task99_Synthetic", seed: int = 0, dice: float | None = 0.5, **update
) -> ArchitectureRecord:
    """A realistic record as the engine would build it (DiNTS-style arch payload)."""
    record = ArchitectureRecord(
        name=name,
        space=SpaceRef(name="dints", version="1", args={"num_blocks": 4, "num_depths": 3, "channel_mul": 0.5}),
        arch={"arch_code_a": [[1, 0, 1]] * 4, "arch_code_c": [1, 2, 0, 1], "node_a": [[1, 1, 0]] * 5},
        strategy=StrategyRef(name="dints", settings={"epochs": 2, "warmup_epochs": 1}),
        dataset=DatasetRef(name="Task99_Synthetic", fingerprint_hash="f" * 16, plan={"patch_size": [32, 32, 32]}),
        seed=seed,
        versions={"automl-seg": "0.1.0", "monai": "1.6.1"},
        metrics=Metrics(
            dice_mean=dice,
            dice_per_class={"1": 0.4, "2": 0.6},
            params=123_456,
            peak_memory_mb=321.0,
            memory={"requested": 0.5, "budget_mb": 150.0, "measured_mb": 218.659},
        ),  # fmt: skip
        tags=["test"],
    )
    return ArchitectureRecord.model_validate(record.model_dump() | update)


def bulk(root: Path, index_url: str | None, worker: int, count: int, names: int) -> None:
    registry = Registry.open(root, index_url)
    scratch = root.parent / f"writer-{worker}"
    scratch.mkdir(exist_ok=True)
    for index in range(count):
        source = scratch / f"weights-{index}.pt"
        payload = os.urandom(4096) + f"{worker}:{index}".encode()
        source.write_bytes(payload)
        started = time.time()
        stored = registry.register(
            sample_record(f"conc-{index % names}", seed=worker * 1000 + index),
            {"weights": (source, "weights")},
        )
        digest = hashlib.sha256(payload).hexdigest()
        print(json.dumps({"ref": stored.ref, "sha256": digest, "t0": started, "t1": time.time()}), flush=True)
    registry.close()


def hang(root: Path, index_url: str | None, stage: str, marker: Path) -> None:
    registry = Registry.open(root, index_url)
    source = root.parent / "big-weights.pt"
    source.write_bytes(os.urandom(8 << 20))

    def stop_here() -> None:
        marker.write_text(str(os.getpid()))
        while True:
            time.sleep(1)

    if stage == "copy":

        def half_copy(src: Path, target: Path) -> tuple[int, str]:
            data = Path(src).read_bytes()
            Path(target).write_bytes(data[: len(data) // 2])
            stop_here()
            raise AssertionError("unreachable")

        registry_files.copy_and_hash = half_copy
    else:
        original_insert = registry_rows.insert

        def insert_then_stop(conn, record: ArchitectureRecord) -> None:
            original_insert(conn, record)
            stop_here()

        registry_rows.insert = insert_then_stop
    registry.register(sample_record("killed"), {"weights": (source, "weights")})


if __name__ == "__main__":
    mode, root, url = sys.argv[1], Path(sys.argv[2]), (sys.argv[3] or None)
    if mode == "bulk":
        bulk(root, url, int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        hang(root, url, sys.argv[4], Path(sys.argv[5]))
