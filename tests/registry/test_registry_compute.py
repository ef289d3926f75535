"""Equal-compute accounting in records: a typed ``metrics.compute`` (search and retraining, wall and device
seconds) that older records simply lack, shown by ``registry show`` and ``registry list --compute``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from automl_seg_registry import Compute, PhaseCompute, Registry, load_record

pytestmark = pytest.mark.cli_in_process  # no Python start for each CLI call


def test_a_record_without_compute_still_loads(sample_record) -> None:
    payload = sample_record().model_dump(mode="json")
    del payload["metrics"]["compute"]  # what records written before the field hold
    record = load_record(payload)
    assert record.metrics.compute == Compute()
    assert record.metrics.compute.search is None and record.metrics.compute.retrain is None


def test_compute_round_trips_and_shows(cli, registry_dir: Path, sample_record, weights: Path) -> None:
    compute = Compute(
        search=PhaseCompute(wall_s=61.5, device_s=118.25, device="cpu"),
        retrain=PhaseCompute(wall_s=400.0, device_s=790.0, device="cpu"),
    )
    record = sample_record()
    record.metrics.compute = compute
    with Registry.open(registry_dir) as registry:
        stored = registry.register(record, {"weights": (weights, "weights")})
        assert registry.get(stored.ref).metrics.compute == compute
    shown = cli("registry", "show", stored.ref, "--registry", registry_dir, env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "61.5 s wall, 118.2 device s (cpu)" in shown.stdout and "400.0 s wall, 790.0 device s" in shown.stdout
    listed = cli("registry", "list", "--compute", "--registry", registry_dir, env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    assert "search s" in listed.stdout and "62 / 118" in listed.stdout and "400 / 790" in listed.stdout
    plain = cli("registry", "list", "--registry", registry_dir, env={"COLUMNS": "200"})
    assert "search s" not in plain.stdout
    as_json = json.loads(cli("registry", "list", "--json", "--registry", registry_dir).stdout)
    assert as_json[0]["metrics"]["compute"]["retrain"] == {"wall_s": 400.0, "device_s": 790.0, "device": "cpu"}
