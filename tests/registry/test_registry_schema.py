"""Record schema: JSON round trip and the migration path for older payloads."""

from __future__ import annotations

import json

import pytest
from automl_seg_registry import SCHEMA_VERSION, ArchitectureRecord, load_record, migrate_payload

from automl_seg.errors import RegistryError

V0_PAYLOAD = {
    "name": "dints-Task04_Hippocampus",
    "version": 3,
    "created": "2025-01-02T03:04:05+00:00",
    "space": "dints",
    "space_version": "1",
    "space_args": {"num_blocks": 12},
    "arch_code": {"arch_code_a": [[1, 0]], "arch_code_c": [1]},
    "strategy": "dints",
    "strategy_settings": {"epochs": 50},
    "dataset": "Task04_Hippocampus",
    "fingerprint": "abc123",
    "plan": {"patch_size": [32, 48, 32]},
    "seed": 7,
    "package_versions": {"monai": "1.3.0"},
    "metrics": {"dice": {"1": 0.8, "2": 0.7}, "dice_mean": 0.75},
    "files": [{"name": "weights", "path": "files/weights.pt", "kind": "weights", "size": 3, "sha256": "0" * 64}],
    "tags": ["old"],
}


def test_record_json_round_trip_is_lossless(sample_record) -> None:
    record = sample_record(parent="other:1", provenance={"study": "s", "trial": 3}).model_copy(update={"version": 4})
    payload = json.loads(json.dumps(record.model_dump(mode="json")))
    assert load_record(payload) == record
    assert payload["schema_version"] == SCHEMA_VERSION


def test_v0_payload_migrates_to_current_schema() -> None:
    record = load_record(V0_PAYLOAD)
    assert isinstance(record, ArchitectureRecord)
    assert record.schema_version == SCHEMA_VERSION
    assert (record.space.name, record.space.version, record.space.args) == ("dints", "1", {"num_blocks": 12})
    assert record.strategy.settings == {"epochs": 50}
    assert (record.dataset.name, record.dataset.fingerprint_hash) == ("Task04_Hippocampus", "abc123")
    assert record.dataset.plan == {"patch_size": [32, 48, 32]}
    assert record.arch == {"arch_code_a": [[1, 0]], "arch_code_c": [1]}
    assert record.metrics.dice_per_class == {"1": 0.8, "2": 0.7}
    assert record.artifacts[0].name == "weights"
    assert record.versions == {"monai": "1.3.0"}
    assert record.ref == "dints-Task04_Hippocampus:3"


def test_migration_does_not_mutate_its_input() -> None:
    before = json.dumps(V0_PAYLOAD, sort_keys=True)
    migrate_payload(V0_PAYLOAD)
    assert json.dumps(V0_PAYLOAD, sort_keys=True) == before


def test_newer_schema_is_refused_with_upgrade_hint(sample_record) -> None:
    payload = sample_record().model_dump(mode="json") | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(RegistryError, match="upgrade automl-seg"):
        load_record(payload)


@pytest.mark.parametrize("payload", [{"name": "x"}, {"schema_version": "one"}, {"schema_version": 1, "name": "x"}])
def test_unreadable_payload_is_one_clear_error(payload: dict) -> None:
    with pytest.raises(RegistryError) as info:
        load_record(payload)
    assert "\n" not in str(info.value)
