"""``run_comparison`` on synthetic data: two strategies x two seeds at equal compute, held-out scoring, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from automl_seg_registry import Registry

from automl_seg.compare import CompareSettings, run_comparison
from automl_seg.errors import ConfigError, DataError, PluginError


def _settings(tmp_path: Path, **values: object) -> CompareSettings:
    base = {"strategies": ["dints", "timed"], "seeds": 2, "device": "cpu", "workdir": tmp_path / "work"}
    return CompareSettings.model_validate({**base, "progress": False, **values})


def test_two_strategies_two_seeds_at_equal_compute_then_reused(tiny_data, tiny_train, tiny_dints, host, tmp_path):
    with Registry.open(tmp_path / "registry") as registry:
        first = run_comparison(
            _settings(tmp_path), tiny_data, tiny_train, {"dints": tiny_dints}, registry=registry, host=host
        )
        report = first.report
        pairs = [("dints", 0), ("dints", 1), ("timed", 0), ("timed", 1)]
        assert sorted((r.strategy, r.seed) for r in report.runs) == pairs
        assert len(report.heldout_cases) == 2
        for row in report.runs:
            assert set(row.case_dice) == set(report.heldout_cases)
            record = registry.get(row.ref)
            assert not set(record.provenance["val_cases"]) & set(report.heldout_cases)
            assert record.dataset.split["holdout_fraction"] == 0.25
            assert f"compare:{report.name}" in record.tags
            search, retrain = record.metrics.compute.search, record.metrics.compute.retrain
            assert search is not None and retrain is not None and retrain.wall_s > 0 and retrain.device_s > 0
        for seed in (0, 1):
            dints = next(r for r in report.runs if r.strategy == "dints" and r.seed == seed)
            timed = next(r for r in report.runs if r.strategy == "timed" and r.seed == seed)
            assert dints.time_budget_s is None
            assert timed.time_budget_s == pytest.approx(dints.search_device_s)  # given what DiNTS' search spent
            assert timed.search_device_s == pytest.approx(timed.time_budget_s, abs=0.5)  # ... and it spent that
        assert {s.strategy for s in report.summary} == {"dints", "timed"} and report.best == report.summary[0].strategy
        (test,) = report.tests
        assert test.best == report.best and test.other != report.best and test.cases == 2 and 0 <= test.p_value <= 1
        assert first.record.name == "compare-Task99_Synthetic-quick"
        assert {a.name for a in first.record.artifacts} == {"comparison", "dice_vs_time"}
        assert (first.folder / "dice_vs_time.png").stat().st_size > 0
        count = len(registry.list())

        again = run_comparison(
            _settings(tmp_path), tiny_data, tiny_train, {"dints": tiny_dints}, registry=registry, host=host
        )
        assert all(row.reused for row in again.report.runs)
        assert [r.ref for r in again.report.runs] == [r.ref for r in report.runs]
        assert again.record.ref == first.record.ref  # same findings: no new version
        assert len(registry.list()) == count

        other_budget = run_comparison(  # the timed runs searched for other seconds then: run again, DiNTS reused
            _settings(tmp_path, search_seconds=0.2), tiny_data, tiny_train, {"dints": tiny_dints}, registry=registry,
            host=host,
        )  # fmt: skip
        assert [(r.strategy, r.reused) for r in other_budget.report.runs] == [
            ("dints", True), ("timed", False), ("dints", True), ("timed", False)
        ]  # fmt: skip
        # ... in folders of their own: the first budget's checkpoints are not continued under the new one
        assert len(list((tmp_path / "work" / "timed-seed0").iterdir())) == 2
        assert len(list((tmp_path / "work" / "dints-seed0").iterdir())) == 1


def test_search_seconds_sets_the_time_budget(tiny_data, tiny_train, host, tmp_path: Path):
    settings = _settings(tmp_path, strategies=["fixed", "timed"], seeds=1, search_seconds=0.3)
    with Registry.open(tmp_path / "registry") as registry:
        report = run_comparison(settings, tiny_data, tiny_train, {}, registry=registry, host=host).report
    timed = next(r for r in report.runs if r.strategy == "timed")
    assert timed.time_budget_s == 0.3 and timed.search_device_s >= 0.3


@pytest.mark.parametrize(
    ("values", "overrides", "error", "words"),
    [
        ({"strategies": ["dints", "nope"]}, {}, PluginError, "unknown strategy 'nope'; installed: dints, fixed, timed"),
        ({}, {"fixed": {"x": 1}}, ConfigError, "settings given for fixed"),
        ({"strategies": ["dints", "timed"]}, {"dints": {"epochs": 0}}, ConfigError, "epochs"),
        ({"budget": "full"}, {}, ConfigError, "budget 'full' is not offered by strategy 'timed'"),
    ],
)
def test_bad_input_fails_before_any_run(tiny_data, tiny_train, host, tmp_path, values, overrides, error, words):
    with Registry.open(tmp_path / "registry") as registry:
        with pytest.raises(error, match=words):
            settings = _settings(tmp_path, **values)
            run_comparison(settings, tiny_data, tiny_train, overrides, registry=registry, host=host)
        assert registry.list() == []


@pytest.mark.parametrize(("strategies", "words"), [(["timed", "timed"], "named twice"), (["dints"], "at least two")])
def test_strategies_named_once_and_at_least_two(tmp_path: Path, strategies: list[str], words: str):
    with pytest.raises(ValueError, match=words):
        _settings(tmp_path, strategies=strategies)


def test_every_strategy_time_budgeted_needs_search_seconds(host, tmp_path: Path):
    from automl_seg.compare.settings import check_strategies

    host.registered["strategy"]["timed2"] = host.strategy("timed")
    with pytest.raises(ConfigError, match="--search-seconds"):
        check_strategies(_settings(tmp_path, strategies=["timed", "timed2"]), {}, host)
    assert check_strategies(_settings(tmp_path, strategies=["timed", "timed2"], search_seconds=1), {}, host)


def test_a_dataset_too_small_for_the_split(tiny_data, tiny_train, tiny_dints, host, tmp_path: Path):
    small = tiny_data.model_copy(update={"max_cases": 3})
    with Registry.open(tmp_path / "registry") as registry, pytest.raises(DataError, match="holding out|training"):
        run_comparison(_settings(tmp_path), small, tiny_train, {"dints": tiny_dints}, registry=registry, host=host)
