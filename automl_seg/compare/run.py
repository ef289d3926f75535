"""``run_comparison``: every strategy x seed on one split at equal compute, scored on held-out cases.

The held-out cases (``DataSettings.holdout_fraction``, default 0.2) are set aside before the dataset
is fingerprinted, planned and split, so no search, retraining or validation sees them. Runs go seed by
seed, within a seed the strategies without a time budget first (their search device seconds set the
others' budget). Completed runs are found in the registry by the comparison's key and reused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from automl_seg.compare.report import CompareReport, plot_dice_vs_time, register_report, write_json
from automl_seg.compare.runs import RunSpec, completed_run, execute_run, heldout_report, run_row
from automl_seg.compare.settings import (
    CompareSettings,
    check_strategies,
    has_time_budget,
    record_name_of,
    with_holdout,
)
from automl_seg.compare.stats import RunRow, paired_test, rank, summarise
from automl_seg.config import DataSettings
from automl_seg.errors import DataError

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.engine.settings import TrainSettings
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    report: CompareReport
    record: ArchitectureRecord  #: the comparison's registry record (report and figure attached)
    folder: Path  #: where the report and figure were written


def run_comparison(
    settings: CompareSettings,
    data_settings: DataSettings,
    train: TrainSettings,
    overrides: Mapping[str, Mapping[str, Any]],
    *,
    registry: Registry,
    host: PluginHost,
) -> Comparison:
    """Run (or reuse) every strategy x seed, score all on the held-out cases, store and register the report.

    ``overrides`` maps a strategy to its settings overrides. Bad input (an unknown strategy, a budget a
    strategy does not declare, too few cases) fails before the first run."""
    from automl_seg_registry.refs import check_record_name

    from automl_seg.data import prepare_data
    from automl_seg.engine.devices import resolve_device
    from automl_seg.engine.pipeline import default_workdir, run_key, strategy_settings

    data_settings = with_holdout(data_settings)
    strategies = check_strategies(settings, overrides, host)
    name = record_name_of(settings, data_settings)
    for record_name in (name, *(f"{name}-{s}" for s in strategies)):
        check_record_name(record_name)
    device = resolve_device(settings.device)
    data = prepare_data(data_settings, progress=settings.progress)
    if len(data.train_cases) < 2:
        raise DataError(
            f"{data.info.name} leaves {len(data.train_cases)} training case(s) after holding out "
            f"{len(data.test_cases)} and validating on {len(data.val_cases)}; searches need at least 2: "
            "use more cases (--max-cases) or a smaller --holdout"
        )
    key = run_key(
        kind="compare", data=data_settings.model_dump(mode="json", exclude={"data_root"}), budget=settings.budget,
        train=train.model_dump(mode="json"), device=device.type,
    )  # fmt: skip
    budgeted = {
        s: has_time_budget(strategy_settings(strategy, settings.budget, overrides.get(s, {})))
        for s, strategy in strategies.items()
    }
    order = sorted(settings.strategies, key=lambda s: budgeted[s])  # stable: the listed order otherwise
    base = Path(settings.workdir) if settings.workdir else default_workdir(f"compare-{key}")
    rows: list[RunRow] = []
    eta = _Eta()
    with _progress(settings.progress) as bar:
        task = bar.add_task("comparison", total=settings.seeds * len(order), eta="-")
        for seed in range(settings.seeds):
            for strategy in order:
                spec = RunSpec(
                    comparison=name,
                    key=run_key(base=key, strategy=strategy, overrides=dict(overrides.get(strategy, {}))),
                    strategy=strategy,
                    seed=seed,
                    overrides=dict(overrides.get(strategy, {})),
                    time_budget_s=_time_budget(settings, rows, seed) if budgeted[strategy] else None,
                )
                bar.update(task, description=f"{strategy} seed {seed}")
                began = time.perf_counter()
                record = completed_run(registry, spec)
                reused = record is not None
                if record is None:
                    record = execute_run(
                        spec, data_settings, train, budget=settings.budget, device=settings.device,
                        workdir=base / f"{strategy}-seed{seed}", registry=registry, host=host,
                    )  # fmt: skip
                heldout = heldout_report(record, data, registry=registry, host=host, device=device, folder=base)
                row = run_row(spec, record, heldout, reused=reused)
                rows.append(row)
                log.info(
                    "%s seed %d%s: held-out Dice %.4f (%s)", strategy, seed, " (reused)" if reused else "",
                    row.dice_mean, record.ref,
                )  # fmt: skip
                eta.add(strategy, row.search_wall_s + row.retrain_wall_s if reused else time.perf_counter() - began)
                remaining = [s for k in range(seed, settings.seeds) for s in order][len(rows) - seed * len(order) :]
                bar.update(task, advance=1, eta=eta.remaining(remaining))
    report = build_report(settings, data_settings, device.type, data.test_cases, rows, name=name)
    folder = base / "report"
    write_json(report, folder / "comparison.json")
    plot_dice_vs_time(report, folder / "dice_vs_time.png")
    record = register_report(registry, report, folder)
    return Comparison(report=report, record=record, folder=folder)


def _time_budget(settings: CompareSettings, rows: Sequence[RunRow], seed: int) -> float:
    """Search device seconds for a time-budgeted strategy in ``seed``: ``search_seconds``, else the longest
    search of this seed's strategies without a time budget (which ran first)."""
    if settings.search_seconds is not None:
        return settings.search_seconds
    spent = [row.search_device_s for row in rows if row.seed == seed and row.time_budget_s is None]
    return max(max(spent), 1e-3)


def equal_compute_rule(settings: CompareSettings) -> str:
    search = (
        f"{settings.search_seconds:g} device seconds"
        if settings.search_seconds is not None
        else "per seed, the longest search device time of the strategies without one"
    )
    return (
        f"retraining: the {settings.budget} training preset for every strategy; search: each strategy's "
        f"{settings.budget} preset, and strategies with a time budget get {search} "
        "(device seconds: CPU time of the process on the CPU, held GPU time on CUDA)"
    )


def build_report(
    settings: CompareSettings,
    data_settings: DataSettings,
    device: str,
    heldout: list[str],
    rows: list[RunRow],
    *,
    name: str,
) -> CompareReport:
    """Summaries (best first) and the paired tests of the best strategy against each other one."""
    summaries = rank([summarise(s, [r for r in rows if r.strategy == s]) for s in settings.strategies])
    best = summaries[0].strategy
    best_runs = [r for r in rows if r.strategy == best]
    tests = [
        paired_test(best, best_runs, s.strategy, [r for r in rows if r.strategy == s.strategy]) for s in summaries[1:]
    ]
    return CompareReport(
        name=name, dataset=data_settings.dataset, budget=settings.budget, seeds=settings.seeds,
        strategies=list(settings.strategies), device=device, equal_compute=equal_compute_rule(settings),
        heldout_cases=sorted(heldout), runs=rows, summary=summaries, best=best, tests=tests,
    )  # fmt: skip


class _Eta:
    """Time left for the remaining runs: each strategy's mean run time so far (a reused run counts its recorded
    search and retraining), else the mean of all runs."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def add(self, strategy: str, seconds: float) -> None:
        self.seconds.setdefault(strategy, []).append(seconds)

    def remaining(self, strategies: Sequence[str]) -> str:
        every = [s for values in self.seconds.values() for s in values]
        if not strategies:
            return "0:00:00"
        if not every:
            return "-"
        overall = sum(every) / len(every)
        left = sum(sum(v) / len(v) if (v := self.seconds.get(s)) else overall for s in strategies)
        return time.strftime("%H:%M:%S", time.gmtime(left)) if left < 86400 else f"{left / 3600:.0f} h"


def _progress(enabled: bool) -> Progress:
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
    ]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)
