"""The comparison's numbers and table: means and spreads over seeds, the paired Wilcoxon test, ranking."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console
from scipy.stats import wilcoxon

from automl_seg.cli.compare_cmd import comparison_table
from automl_seg.compare.run import build_report
from automl_seg.compare.settings import CompareSettings
from automl_seg.compare.stats import RunRow, paired_test, stat, summarise
from automl_seg.config import DataSettings

CASES = [f"case_{i}" for i in range(8)]


def _row(strategy: str, seed: int, level: float, spread: float = 0.01) -> RunRow:
    rng = np.random.default_rng([seed, len(strategy)])
    case_dice = {case: float(level + spread * rng.standard_normal()) for case in CASES}
    mean = float(np.mean(list(case_dice.values())))
    return RunRow(
        strategy=strategy, seed=seed, ref=f"{strategy}:{seed + 1}", reused=False,
        dice_per_class={"Anterior": mean + 0.01, "Posterior": mean - 0.01}, dice_mean=mean, case_dice=case_dice,
        search_wall_s=100.0 + seed, search_device_s=190.0 + seed, retrain_wall_s=400.0, retrain_device_s=790.0,
        peak_memory_mb=800.0, params=440_000, time_budget_s=None,
    )  # fmt: skip


def test_stat_is_mean_and_sample_sd() -> None:
    assert stat([1.0, 2.0, 3.0]).model_dump() == {"mean": 2.0, "sd": 1.0}
    assert stat([5.0]).sd is None


def test_summary_over_seeds() -> None:
    rows = [_row("dints", seed, 0.86) for seed in range(3)]
    summary = summarise("dints", rows)
    assert summary.runs == 3 and summary.search_wall_s.mean == 101.0 and summary.search_wall_s.sd == 1.0
    assert summary.dice_mean.mean == pytest.approx(np.mean([r.dice_mean for r in rows]))
    assert set(summary.dice_per_class) == {"Anterior", "Posterior"}


def test_paired_test_is_scipys_wilcoxon_on_seed_averaged_cases() -> None:
    best = [_row("dints", seed, 0.87) for seed in range(3)]
    other = [_row("fixed", seed, 0.85) for seed in range(3)]
    test = paired_test("dints", best, "fixed", other)
    differences = [np.mean([r.case_dice[c] for r in best]) - np.mean([r.case_dice[c] for r in other]) for c in CASES]
    assert test.p_value == pytest.approx(wilcoxon(differences).pvalue)
    assert test.cases == 8 and test.median_difference == pytest.approx(np.median(differences)) and test.p_value < 0.05
    same = paired_test("dints", best, "dints", best)
    assert same.p_value == 1.0 and same.statistic is None and same.median_difference == 0.0


def test_report_ranks_best_first_and_tests_it_against_each_other() -> None:
    levels = {"fixed": 0.85, "dints": 0.87, "random": 0.83}
    rows = [_row(strategy, seed, level) for strategy, level in levels.items() for seed in (0, 1)]
    settings = CompareSettings(strategies=["fixed", "dints", "random"], seeds=2, progress=False)
    data = DataSettings(dataset="Task04_Hippocampus")
    report = build_report(settings, data, "cpu", CASES, rows, name="compare-Task04_Hippocampus-quick")
    assert [s.strategy for s in report.summary] == ["dints", "fixed", "random"] and report.best == "dints"
    assert [(t.best, t.other) for t in report.tests] == [("dints", "fixed"), ("dints", "random")]
    assert "device seconds" in report.equal_compute
    console = Console(width=120, record=True)  # the CLI's width when piped
    console.print(comparison_table(report))
    text = console.export_text()
    assert "wall / device" in text and "100 / 190" in text and "400 / 790" in text and "0.44 M" in text
    assert "0.866±0.005" in text  # dints' mean Dice ± sd over seeds
    lines = {line.split()[0]: line.rstrip() for line in text.splitlines() if line.split()[:1] in (["dints"], ["fixed"])}
    assert lines["dints"].endswith("best") and lines["fixed"].endswith(f"{report.tests[0].p_value:.3g}")
    reused = report.model_copy(update={"runs": [r.model_copy(update={"reused": True}) for r in rows]})
    assert reused.digest() == report.digest()  # reusing runs is not a new finding


def test_the_example_compare_config_is_valid() -> None:
    from pathlib import Path

    from automl_seg.cli.compare_cmd import CONFIG_SECTIONS, _overrides
    from automl_seg.config import read_config_file
    from automl_seg.plugins import load_plugins

    config = read_config_file(Path(__file__).parents[2] / "examples" / "compare" / "dints-long-search.yaml")
    assert set(config) <= CONFIG_SECTIONS
    settings = load_plugins().strategy("dints").settings("quick", _overrides(config)["dints"])
    assert settings.epochs - settings.warmup_epochs == 30 and settings.decode == "budget"
