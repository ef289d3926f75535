"""The store's API on both index backends (embedded SQLite and PostgreSQL via ``postgres_url``)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from automl_seg_registry import Registry

from automl_seg.errors import RegistryError


def test_register_assigns_versions_and_copies_files(registry: Registry, sample_record, weights: Path) -> None:
    first = registry.register(sample_record(), {"weights": (weights, "weights")})
    second = registry.register(sample_record(seed=1), {"weights": (weights, "weights")})
    assert (first.version, second.version) == (1, 2)
    artifact = first.artifacts[0]
    assert (artifact.name, artifact.kind, artifact.size) == ("weights", "weights", weights.stat().st_size)
    assert artifact.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    weights.write_bytes(b"changed after registration")  # the registry holds its own copy
    stored = registry.artifact_path(first.ref, "weights")
    assert stored.is_relative_to(registry.root / "records")
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == artifact.sha256
    assert json.loads((stored.parent.parent / "record.json").read_text())["version"] == 1


def test_get_resolves_every_ref_form(registry: Registry, sample_record) -> None:
    now = datetime.now(UTC)
    registry.register(sample_record("a", created=now - timedelta(minutes=3)))
    registry.register(sample_record("a", created=now - timedelta(minutes=2)), aliases=["best"])
    registry.register(sample_record("b", created=now - timedelta(minutes=1)))
    assert registry.get("a:1").seed == 0 and registry.get("a:1").version == 1
    assert registry.get("a").ref == "a:2"
    assert registry.get("a@latest").ref == "a:2"
    assert registry.get("a@best").ref == "a:2"
    assert registry.get("latest").ref == "b:1"
    assert registry.resolve("a@best") == "a:2"
    for unknown in ("a:9", "a@nope", "zzz"):
        with pytest.raises(
            RegistryError,
            match=f"no record matches '{unknown if ':' in unknown or '@' in unknown else unknown + '@latest'}'",
        ):
            registry.get(unknown)


def test_latest_on_an_empty_registry_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="is empty"):
        registry.get("latest")


def test_list_filters_and_orders(registry: Registry, sample_record) -> None:
    registry.register(sample_record("b"))
    registry.register(sample_record("a", strategy={"name": "random", "settings": {}}))
    registry.register(sample_record("a", dataset={"name": "Task04_Hippocampus", "fingerprint_hash": "x", "plan": {}}))
    assert [r.ref for r in registry.list()] == ["a:1", "a:2", "b:1"]
    assert [r.ref for r in registry.list(strategy="random")] == ["a:1"]
    assert [r.ref for r in registry.list(dataset="Task04_Hippocampus")] == ["a:2"]
    assert [r.ref for r in registry.list(name="b")] == ["b:1"]
    assert registry.list(name="none") == []


def test_tag_moves_aliases_and_versions_stay(registry: Registry, sample_record) -> None:
    registry.register(sample_record("a"))
    registry.register(sample_record("a"))
    registry.tag("a:1", "prod")
    assert registry.get("a@prod").ref == "a:1"
    registry.tag("a:2", "prod")
    assert registry.get("a@prod").ref == "a:2"
    assert registry.get("a:1").version == 1
    assert registry.aliases() == {"a:2": ["latest", "prod"]}
    with pytest.raises(RegistryError, match="moved by the registry"):
        registry.tag("a:1", "latest")
    with pytest.raises(RegistryError, match="invalid alias"):
        registry.tag("a:1", "../x")


def test_promote_moves_best_only_when_better(registry: Registry, sample_record) -> None:
    registry.register(sample_record("a", dice=0.6))
    registry.register(sample_record("a", dice=0.5))
    registry.register(sample_record("a", dice=0.7))
    registry.register(sample_record("a", dice=None))
    assert registry.promote("a:1") is True
    assert registry.promote("a:2") is False
    assert registry.promote("a:1") is False
    assert registry.get("a@best").ref == "a:1"
    assert registry.promote("a:3") is True
    assert registry.get("a@best").ref == "a:3"
    with pytest.raises(RegistryError, match="no metric 'dice_mean'"):
        registry.promote("a:4")
    assert registry.promote("a:2", alias="smallest", metric="params", higher_is_better=False) is True
    assert registry.promote("a:1", alias="smallest", metric="params", higher_is_better=False) is False


def test_remove_deletes_record_files_and_aliases_without_reusing_versions(
    registry: Registry, sample_record, weights: Path
) -> None:
    registry.register(sample_record("a"), {"weights": (weights, "weights")})
    second = registry.register(sample_record("a"), {"weights": (weights, "weights")}, aliases=["best"])
    folder = registry.artifact_path(second.ref, "weights").parent.parent
    assert registry.remove("a") == "a:2"
    assert not folder.exists()
    assert [r.ref for r in registry.list()] == ["a:1"]
    with pytest.raises(RegistryError, match="no record matches 'a@best'"):
        registry.get("a@best")
    assert registry.register(sample_record("a")).version == 3
    assert registry.verify() == []


def test_attach_adds_an_artifact_and_never_overwrites(
    registry: Registry, sample_record, weights: Path, tmp_path: Path
) -> None:
    stored = registry.register(sample_record(), {"weights": (weights, "weights")})
    export = tmp_path / "model.onnx"
    export.write_bytes(b"onnx-bytes")
    updated = registry.attach(stored.ref, "onnx", export, "export")
    assert [a.name for a in updated.artifacts] == ["weights", "onnx"]
    assert registry.get(stored.ref).artifacts == updated.artifacts
    assert registry.artifact_path(stored.ref, "onnx").read_bytes() == b"onnx-bytes"
    assert registry.artifact_path(stored.ref, "onnx").name == "onnx.onnx"
    with pytest.raises(RegistryError, match="already has an artifact 'onnx'"):
        registry.attach(stored.ref, "onnx", weights, "export")
    with pytest.raises(RegistryError, match="already has an artifact 'weights'"):
        registry.attach(stored.ref, "weights", export, "weights")
    assert registry.get(stored.ref).arch == stored.arch
    mirror = json.loads((registry.record_dir(stored.ref) / "record.json").read_text())
    assert [a["name"] for a in mirror["artifacts"]] == ["weights", "onnx"]
    assert registry.verify() == []


def test_corrupt_and_missing_artifacts_are_named(registry: Registry, sample_record, weights: Path) -> None:
    good = registry.register(sample_record("good"), {"weights": (weights, "weights")})
    bad = registry.register(sample_record("bad"), {"weights": (weights, "weights"), "report": (weights, "report")})
    path = registry.artifact_path(bad.ref, "weights")
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    registry.artifact_path(bad.ref, "report").unlink()
    problems = registry.verify()
    assert sorted((p.ref, p.artifact, p.kind) for p in problems) == [
        ("bad:1", "report", "missing"),
        ("bad:1", "weights", "altered"),
    ]
    assert all(p.path.is_relative_to(registry.root) for p in problems)
    with pytest.raises(RegistryError, match=r"artifact 'weights' of bad:1 is corrupt: sha256 mismatch"):
        registry.artifact_path("bad", "weights")
    with pytest.raises(RegistryError, match=r"artifact 'report' of bad:1 is missing"):
        registry.artifact_path("bad", "report", verify=False)
    with pytest.raises(RegistryError, match="has no artifact 'onnx'"):
        registry.artifact_path("bad", "onnx")
    assert registry.artifact_path(good.ref, "weights").is_file()


def test_register_refuses_bad_input(registry: Registry, sample_record, weights: Path) -> None:
    with pytest.raises(RegistryError, match="invalid record name"):
        registry.register(sample_record("../escape"))
    with pytest.raises(RegistryError, match="reserved"):
        registry.register(sample_record("latest"))
    with pytest.raises(RegistryError, match="invalid artifact name"):
        registry.register(sample_record(), {"../w": (weights, "weights")})
    with pytest.raises(RegistryError, match="does not exist"):
        registry.register(sample_record(), {"weights": (weights.with_name("nope.pt"), "weights")})
    with pytest.raises(RegistryError, match="parent 'ghost:1' cannot be used"):
        registry.register(sample_record(parent="ghost:1"))
    stored = registry.register(sample_record(), {"weights": (weights, "weights")})
    with pytest.raises(RegistryError, match="leave record.artifacts empty"):
        registry.register(stored)
    assert [r.ref for r in registry.list()] == [stored.ref]
    assert list((registry.root / "tmp").iterdir()) == []


def test_parent_is_pinned_to_an_exact_version(registry: Registry, sample_record) -> None:
    registry.register(sample_record("a"), aliases=["best"])
    child = registry.register(sample_record("a-retrained", parent="a@best"))
    assert child.parent == "a:1"
    assert registry.get(child.ref).parent == "a:1"


def test_card_has_front_matter_and_summary(registry: Registry, sample_record, weights: Path) -> None:
    import yaml

    stored = registry.register(sample_record("a", dice=0.8123), {"weights": (weights, "weights")}, aliases=["best"])
    card = registry.card("a@best")
    empty, front, body = card.split("---\n", 2)
    assert empty == ""
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "automl-seg" and meta["datasets"] == ["Task99_Synthetic"]
    assert {"dints", "test", "medical-imaging"} <= set(meta["tags"])
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.8123
    assert "license" in meta
    assert body.lstrip().startswith(f"# {stored.ref} (best, latest)")
    assert "mean Dice 0.8123" in body
    assert "automl-seg search --strategy dints --dataset Task99_Synthetic --seed 0" in body
    assert stored.artifacts[0].sha256 in body
    assert f"`automl-seg report {stored.ref} -o report.html`" in body  # the card links the HTML report


def test_index_from_a_newer_release_is_refused(sqlite_registry: Registry) -> None:
    from automl_seg_registry.index import meta
    from sqlalchemy import update

    sqlite_registry.index.write(lambda conn: conn.execute(update(meta).values(value="99")))
    with pytest.raises(RegistryError, match="upgrade automl-seg"):
        Registry.open(sqlite_registry.root)


def test_old_schema_rows_in_the_index_still_load(sqlite_registry: Registry, sample_record) -> None:
    from automl_seg_registry.index import records
    from sqlalchemy import update

    stored = sqlite_registry.register(sample_record("old"))
    v0 = {
        "name": "old", "version": 1, "created": stored.created.isoformat(), "space": "dints", "space_version": "1",
        "strategy": "dints", "dataset": "Task99_Synthetic", "fingerprint": "abc", "seed": 3,
        "arch_code": {"arch_code_c": [1]},
    }  # fmt: skip
    sqlite_registry.index.write(lambda conn: conn.execute(update(records).values(payload=json.dumps(v0))))
    record = sqlite_registry.get("old:1")
    assert (record.seed, record.arch, record.dataset.fingerprint_hash) == (3, {"arch_code_c": [1]}, "abc")


def test_index_url_comes_from_the_environment(
    registry_dir: Path, postgres_url: str, sample_record, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the README's form, without a driver: psycopg2 is used where psycopg 3 (SQLAlchemy's default) is missing
    monkeypatch.setenv("AUTOML_SEG_REGISTRY_INDEX", postgres_url.replace("postgresql+psycopg2://", "postgresql://"))
    with Registry.open(registry_dir) as registry:
        registry.register(sample_record("a"))
    assert not (registry_dir / "index.sqlite").exists()
    with Registry.open(registry_dir, postgres_url) as registry:
        assert [r.ref for r in registry.list()] == ["a:1"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg2://postgres@127.0.0.1:1/none", "cannot open registry index"),
        ("not a url", "cannot be used"),
        ("nosuchdb+driver://x/y", "cannot be used"),
    ],
)
def test_unusable_index_urls_are_one_line_errors(registry_dir: Path, url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        Registry.open(registry_dir, url)
    assert "\n" not in str(info.value)


def test_committed_pending_directory_is_finished_by_the_next_reader(
    sqlite_registry: Registry, sample_record, weights: Path
) -> None:
    stored = sqlite_registry.register(sample_record("a"), {"weights": (weights, "weights")})
    final = sqlite_registry.record_dir(stored.ref)
    final.rename(final.parent / ".pending-1")  # as if the writer died between its commit and its rename
    assert sqlite_registry.artifact_path(stored.ref, "weights").read_bytes() == weights.read_bytes()
    assert final.is_dir() and sqlite_registry.verify() == []
