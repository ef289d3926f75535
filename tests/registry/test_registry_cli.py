"""``automl-seg registry ...`` through the real CLI: its entry point in process, the declined ``rm`` prompt in
a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from automl_seg_registry import Registry

pytestmark = pytest.mark.cli_in_process  # many CLI calls: no Python start for each


@pytest.fixture
def filled(registry_dir: Path, sample_record, weights: Path) -> Path:
    with Registry.open(registry_dir) as registry:
        registry.register(sample_record("dints-Task99_Synthetic", dice=0.61), {"weights": (weights, "weights")})
        registry.register(sample_record("dints-Task99_Synthetic", dice=0.72), {"weights": (weights, "weights")})
        registry.register(
            sample_record("fixed-Task99_Synthetic", dice=0.55, strategy={"name": "fixed", "settings": {}}),
            {"weights": (weights, "weights")},
        )
        registry.promote("dints-Task99_Synthetic:2")
    return registry_dir


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _user_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


def test_list_table_and_json_with_filters(cli, filled: Path) -> None:
    table = _ok(cli("registry", "list", "--registry", filled, env={"COLUMNS": "160"}))
    for text in ("ref", "mean Dice", "params", "memory", "created", "dints-Task99_Synthetic:2", "(best, latest)"):
        assert text in table
    assert "0.7200" in table and "0.12 M" in table and "321 MB" in table
    rows = json.loads(_ok(cli("registry", "list", "--registry", filled, "--json", "--strategy", "fixed")))
    assert [(row["name"], row["version"]) for row in rows] == [("fixed-Task99_Synthetic", 1)]
    assert json.loads(_ok(cli("registry", "list", "--registry", filled, "--json", "--dataset", "Nope"))) == []
    empty = _ok(cli("registry", "list", "--registry", filled.parent / "empty"))
    assert "no records" in empty


def test_show_json_is_the_record_and_table_has_artifacts(cli, filled: Path) -> None:
    record = json.loads(_ok(cli("registry", "show", "dints-Task99_Synthetic@best", "--registry", filled, "--json")))
    assert (record["name"], record["version"], record["metrics"]["dice_mean"]) == ("dints-Task99_Synthetic", 2, 0.72)
    assert record["artifacts"][0]["sha256"]
    text = _ok(cli("registry", "show", "latest", "--registry", filled, env={"COLUMNS": "160"}))
    assert "fixed-Task99_Synthetic:1" in text and "files/weights.pt" in text
    assert "budget_mb 150, measured_mb 218.7, requested 0.5" in text  # the strategy's memory figures


def test_bad_refs_are_one_line_errors(cli, filled: Path) -> None:
    _user_error(cli("registry", "show", "../../etc/passwd", "--registry", filled), "malformed registry reference")
    _user_error(cli("registry", "show", "dints-Task99_Synthetic:9", "--registry", filled), "no record matches")
    _user_error(cli("registry", "tag", "dints-Task99_Synthetic:1", "latest", "--registry", filled), "latest")


def test_tag_then_rm_with_and_without_confirmation(cli, filled: Path) -> None:
    assert "dints-Task99_Synthetic@prod -> dints-Task99_Synthetic:1" in _ok(
        cli("registry", "tag", "dints-Task99_Synthetic:1", "prod", "--registry", filled)
    )
    shown = json.loads(_ok(cli("registry", "show", "dints-Task99_Synthetic@prod", "--registry", filled, "--json")))
    assert shown["version"] == 1
    declined = subprocess.run(
        [sys.executable, "-m", "automl_seg.cli.main", "registry", "rm", "dints-Task99_Synthetic:1", "--registry",
         str(filled)],
        input="n\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert declined.returncode == 1 and "Traceback" not in declined.stderr
    assert (filled / "records" / "dints-Task99_Synthetic" / "1").is_dir()
    assert "removed dints-Task99_Synthetic:1" in _ok(
        cli("registry", "rm", "dints-Task99_Synthetic@prod", "--yes", "--registry", filled)
    )
    assert not (filled / "records" / "dints-Task99_Synthetic" / "1").exists()
    refs = [(r["name"], r["version"]) for r in json.loads(_ok(cli("registry", "list", "--registry", filled, "--json")))]
    assert ("dints-Task99_Synthetic", 1) not in refs and len(refs) == 2


def test_rm_of_a_parent_names_its_children(cli, filled: Path, sample_record) -> None:
    with Registry.open(filled) as registry:
        child = registry.register(sample_record("dints-Task99_Synthetic", parent="dints-Task99_Synthetic:1"))
    removed = cli("registry", "rm", "dints-Task99_Synthetic:1", "--yes", "--registry", filled)
    assert "removed dints-Task99_Synthetic:1" in _ok(removed)
    assert f"{child.ref} name(s) it as parent" in " ".join(removed.stderr.split())


def test_verify_passes_then_names_the_altered_file(cli, filled: Path) -> None:
    assert "ok: 3 artifact(s) of 3 record(s)" in _ok(cli("registry", "verify", "--registry", filled))
    weights = filled / "records" / "fixed-Task99_Synthetic" / "1" / "files" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[::-1])
    result = cli("registry", "verify", "--registry", filled, "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == [
        {"ref": "fixed-Task99_Synthetic:1", "artifact": "weights", "kind": "altered", "path": str(weights)}
    ]
    table = cli("registry", "verify", "--registry", filled, env={"COLUMNS": "200"})
    assert table.returncode == 1 and "fixed-Task99_Synthetic:1" in table.stderr and "altered" in table.stderr


def test_verify_with_a_lost_index_reports_then_reindexes(cli, filled: Path) -> None:
    (filled / "index.sqlite").unlink()
    lost = cli("registry", "verify", "--registry", filled, env={"COLUMNS": "200"})
    assert lost.returncode == 1 and "unindexed" in lost.stderr and "verify --reindex" in lost.stderr
    assert (filled / "records" / "fixed-Task99_Synthetic" / "1" / "files" / "weights.pt").is_file()
    recovered = cli("registry", "verify", "--registry", filled, "--reindex")
    assert "ok: 3 artifact(s) of 3 record(s)" in _ok(recovered)
    assert "re-indexed fixed-Task99_Synthetic:1" in recovered.stderr


def test_verify_reports_a_rewritten_mirror_and_exits_1_once(cli, filled: Path) -> None:
    mirror = filled / "records" / "fixed-Task99_Synthetic" / "1" / "record.json"
    mirror.write_text(mirror.read_text().replace('"seed": 0', '"seed": 7'))
    result = cli("registry", "verify", "--registry", filled, "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["problems"] == [
        {"ref": "fixed-Task99_Synthetic:1", "artifact": None, "kind": "mirror-rewritten", "path": str(mirror)}
    ]
    assert json.loads(mirror.read_text())["seed"] == 0
    mirror.write_text("{}")
    table = cli("registry", "verify", "--registry", filled, env={"COLUMNS": "200"})
    assert table.returncode == 1 and "mirror-rewritten" in table.stderr
    assert "rewritten from it" in " ".join(table.stderr.split())
    assert "ok: 3 artifact(s) of 3 record(s)" in _ok(cli("registry", "verify", "--registry", filled))


def test_card_prints_and_writes_markdown(cli, filled: Path, tmp_path: Path) -> None:
    card = _ok(cli("registry", "card", "dints-Task99_Synthetic@best", "--registry", filled))
    assert card.startswith("---\n") and "library_name: automl-seg" in card and "# dints-Task99_Synthetic:2" in card
    target = tmp_path / "card.md"
    _ok(cli("registry", "card", "dints-Task99_Synthetic@best", "--registry", filled, "--output", target))
    assert target.read_text() == card
    again = ["registry", "card", "dints-Task99_Synthetic:1", "--registry", filled, "--output", target]
    _user_error(cli(*again), "already exists; pass --overwrite")
    assert target.read_text() == card  # untouched
    _ok(cli(*again, "--overwrite"))
    assert "# dints-Task99_Synthetic:1" in target.read_text()
    _user_error(cli(*again[:-1], tmp_path), "is a folder")
    _user_error(cli(*again[:-1], tmp_path / "missing" / "c.md"), "does not exist")


def test_registry_location_comes_from_the_environment(cli, filled: Path) -> None:
    rows = json.loads(_ok(cli("registry", "list", "--json", env={"AUTOML_SEG_REGISTRY": str(filled)})))
    assert len(rows) == 3
