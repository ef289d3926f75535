"""``automl-seg compare``: strategies x seeds at equal compute on held-out cases (``automl_seg.compare``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from automl_seg.cli.common import ConfigOption, DataRootOption, JsonFlag, RegistryOption, console, print_json
from automl_seg.cli.engine_cmd import BudgetOption, DeviceOption, MaxCasesOption, ProgressOption, WorkdirOption
from automl_seg.config import DataSettings, build_settings, check_sections, read_config_file, section
from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    from automl_seg.compare import CompareReport
    from automl_seg.compare.stats import Stat

CONFIG_SECTIONS = {"compare", "data", "train", "strategies"}


def _overrides(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The config file's ``strategies`` section: strategy name -> its settings overrides."""
    found = section(config, "strategies")
    for name, values in found.items():
        if not isinstance(values, dict):
            raise ConfigError(f"config section 'strategies.{name}' must be a mapping of settings")
    return found


def compare(
    strategies: Annotated[
        str | None,
        typer.Option("--strategies", help="Installed strategies, comma separated, e.g. dints,random,fixed."),
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="MSD task name.")] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", help="Runs per strategy, seeds 0..N-1 (default 3).")] = None,
    budget: BudgetOption = None,
    holdout: Annotated[
        float | None, typer.Option("--holdout", help="Fraction of cases held out for scoring (default 0.2).")
    ] = None,
    search_seconds: Annotated[
        float | None,
        typer.Option(
            "--search-seconds",
            help="Search device seconds for time-budgeted strategies (default: per seed, the longest search of the "
            "others).",
        ),
    ] = None,
    train_epochs: Annotated[int | None, typer.Option("--train-epochs", help="Retraining epochs.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Record name of the comparison (default compare-DATASET-BUDGET).")
    ] = None,
    max_cases: MaxCasesOption = None,
    data_root: DataRootOption = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    device: DeviceOption = None,
    workdir: WorkdirOption = None,
    progress: ProgressOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare search strategies at equal compute: strategies x seeds on one split, scored on held-out cases."""
    from automl_seg_registry import Registry

    from automl_seg.compare import CompareSettings, run_comparison
    from automl_seg.compare.settings import check_strategies
    from automl_seg.engine.settings import train_settings
    from automl_seg.plugins import load_plugins

    cfg = read_config_file(config) if config else {}
    check_sections(cfg, CONFIG_SECTIONS, config or Path())
    listed = strategies.split(",") if strategies is not None else None
    settings = build_settings(
        CompareSettings,
        section(cfg, "compare"),
        {"strategies": listed, "seeds": seeds, "budget": budget, "search_seconds": search_seconds, "name": name,
         "device": device, "workdir": workdir, "progress": progress},
        source="compare settings",
    )  # fmt: skip
    data = build_settings(
        DataSettings,
        section(cfg, "data"),
        {"dataset": dataset, "data_root": data_root, "max_cases": max_cases, "holdout_fraction": holdout},
        source="data settings",
    )
    if holdout is not None and holdout <= 0:
        raise ConfigError(f"--holdout {holdout:g}: a comparison scores on held-out cases; give a fraction in (0, 1)")
    host = load_plugins()
    overrides = _overrides(cfg)
    check_strategies(settings, overrides, host)  # before the training preset: it names the budget's real problem
    train = train_settings(settings.budget, section(cfg, "train"), {"epochs": train_epochs})
    with Registry.open(registry) as reg:
        result = run_comparison(settings, data, train, overrides, registry=reg, host=host)
    if as_json:
        print_json({**result.report.model_dump(mode="json"), "record": result.record.ref, "folder": str(result.folder)})
        return
    console.print(comparison_table(result.report))
    console.print(
        f"best: [bold]{result.report.best}[/]; report {result.folder / 'comparison.json'}, figure "
        f"{result.folder / 'dice_vs_time.png'}; registered as [bold]{result.record.ref}[/] "
        f"(tag compare:{result.report.name})",
        highlight=False,
        soft_wrap=True,
    )


def _pm(value: Stat | None, pattern: str) -> str:
    if value is None:
        return "-"
    text = pattern.format(value.mean)
    return text if value.sd is None else f"{text}±{pattern.format(value.sd)}"


def comparison_table(report: CompareReport) -> Table:
    """One row per strategy (best first): held-out Dice mean±sd over seeds (three decimals), mean costs, p-value
    against the best (the JSON has every figure in full, spreads of the costs included)."""
    classes = list(report.summary[0].dice_per_class)
    p_values = {test.other: test.p_value for test in report.tests}
    table = Table(
        title=f"{report.dataset}, {report.budget} budget, {report.seeds} seed(s), "
        f"{len(report.heldout_cases)} held-out cases ({report.device})",
        box=box.SIMPLE_HEAD,
        caption="Dice: mean±sd over seeds; seconds: wall / device (the equal-compute measure)",
    )
    table.add_column("strategy", no_wrap=True)
    for name in [*(f"Dice {c}" for c in classes), "mean Dice"]:
        table.add_column(name, justify="right", min_width=11)
    for name in ("search s", "retrain s", "peak MB", "params"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("p vs best", justify="right", no_wrap=True, min_width=9)
    for summary in report.summary:
        table.add_row(
            summary.strategy,
            *(_pm(summary.dice_per_class[c], "{:.3f}") for c in classes),
            _pm(summary.dice_mean, "{:.3f}"),
            f"{summary.search_wall_s.mean:.0f} / {summary.search_device_s.mean:.0f}",
            f"{summary.retrain_wall_s.mean:.0f} / {summary.retrain_device_s.mean:.0f}",
            "-" if summary.peak_memory_mb is None else f"{summary.peak_memory_mb.mean:.0f}",
            "-" if summary.params is None else f"{summary.params.mean / 1e6:.2f} M",
            "best" if summary.strategy == report.best else f"{p_values[summary.strategy]:.3g}",
        )
    return table


def register(root: typer.Typer) -> None:
    root.command("compare")(compare)
