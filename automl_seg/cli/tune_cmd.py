"""``automl-seg tune``: run (or resume, or join) an Optuna study; ``tune show``: what a study found."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from automl_seg.cli.common import (
    ConfigOption,
    DataRootOption,
    JsonFlag,
    MlflowOption,
    NprocOption,
    RegistryOption,
    SetOption,
    console,
    err_console,
    launched_as_job,
    mlflow_tracking,
    print_json,
)
from automl_seg.tune.study import Objective, PrunerName, SamplerName

TUNE_HINT = "finished trials are stored; rerun the same tune command to continue the study"

if TYPE_CHECKING:
    from automl_seg.tune.params import ParameterSpec
    from automl_seg.tune.report import StudyReport
    from automl_seg.tune.run import TuneResult

app = typer.Typer(
    help="Tune hyper-parameters with Optuna: run a study (no subcommand) or `tune show` one.",
    invoke_without_command=True,
    no_args_is_help=True,
)

CONFIG_SECTIONS = {"data", "train", "strategy", "search", "tune"}
RUN_KEYS = {"budget", "device"}  # what the config's ``search`` section may set for every trial


StorageOption = Annotated[
    str | None,
    typer.Option("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db (default: SQLite file in "
                 "the registry folder). Workers on several machines share a study through one server URL."),
]  # fmt: skip
RegistryIndexOption = Annotated[
    str | None,
    typer.Option("--registry-index", envvar="AUTOML_SEG_REGISTRY_INDEX",
                 help="Database URL of the registry index (default: SQLite inside the registry folder)."),
]  # fmt: skip


@app.callback()
def tune(
    ctx: typer.Context,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Search strategy to tune (e.g. dints).")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="MSD task name, e.g. Task04_Hippocampus.")] = None,
    trials: Annotated[int, typer.Option("--trials", help="Trials this process runs (each worker runs its own).")] = 10,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop starting trials after this many seconds.")
    ] = None,
    storage: StorageOption = None,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study name (default tune-<strategy>-<dataset>); an existing study is resumed."),
    ] = None,
    sampler: Annotated[SamplerName, typer.Option("--sampler", help="Optuna sampler.")] = "tpe",
    pruner: Annotated[
        PrunerName | None, typer.Option("--pruner", help="Pruner (default: median; none for pareto).")
    ] = None,
    objective: Annotated[
        Objective,
        typer.Option(
            "--objective",
            help="dice: maximise validation Dice; dice-per-mb: Dice / measured MB; pareto: Dice vs measured memory.",
        ),
    ] = "dice",
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed of the sampler and of every trial's run; give each worker of a shared study its own."
        ),
    ] = 0,
    budget: Annotated[
        str | None, typer.Option("--budget", help="Preset of every trial by name: quick (default), standard, full, ...")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto (default), cpu or cuda.")] = None,
    assignments: SetOption = None,
    train_epochs: Annotated[int | None, typer.Option("--train-epochs", help="Retraining epochs per trial.")] = None,
    max_cases: Annotated[int | None, typer.Option("--max-cases", help="Use only the first N cases.")] = None,
    data_root: DataRootOption = None,
    registry: RegistryOption = None,
    registry_index: RegistryIndexOption = None,
    config: ConfigOption = None,
    nproc: NprocOption = None,
    mlflow: MlflowOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Run an Optuna study: each trial is a short search + retrain; validation Dice per epoch lets the
    pruner stop bad trials. The best trial's model gets the registry alias `best` of the study's name."""
    if ctx.invoked_subcommand is not None:
        return
    from automl_seg.config import build_settings, check_sections, read_config_file, section
    from automl_seg.engine.options import parse_assignments
    from automl_seg.errors import ConfigError
    from automl_seg.tune.run import TuneRequest

    if not strategy or not dataset:
        raise ConfigError("automl-seg tune needs --strategy and --dataset (or a subcommand: tune show)")
    file = read_config_file(config) if config else {}
    if config:
        check_sections(file, CONFIG_SECTIONS, config)
    tune_section = section(file, "tune")
    unknown = sorted(set(tune_section) - {"params"})
    if unknown:
        raise ConfigError(f"config file {config}: unknown key(s) {', '.join(unknown)} in section 'tune'; known: params")
    search = section(file, "search")
    if set(search) - RUN_KEYS:
        raise ConfigError(
            f"config file {config}: section 'search' takes {', '.join(sorted(RUN_KEYS))} for tuning, "
            f"not {', '.join(sorted(set(search) - RUN_KEYS))}"
        )
    request = build_settings(TuneRequest, overrides=dict(
        strategy=strategy, dataset=dataset, trials=trials, timeout_s=timeout, storage=storage, study=study,
        sampler=sampler, pruner=pruner, objective=objective,
        seed=seed, registry=registry, registry_index=registry_index,
        params=section(tune_section, "params"), params_source=f"config file {config}",
    ), source="tune settings")  # fmt: skip
    request.check()
    strategy_base = {**section(file, "strategy"), **parse_assignments(assignments or [])}
    if launched_as_job(ctx, nproc, device or search.get("device", "auto"), TUNE_HINT):
        return
    with mlflow_tracking(mlflow):
        result = _run(request, file, search, strategy_base, budget, device, train_epochs, max_cases, data_root)
    if result is None:  # a rank other than 0 of a DDP worker: rank 0 reports
        return
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print_report(result)
    if result.best_ref:
        console.print(f"alias [bold]best[/] -> {result.best_ref}")
    if result.pareto_png:
        console.print(f"Pareto front: {result.pareto_png}")


def _run(
    request: Any,
    file: dict[str, Any],
    search: dict[str, Any],
    strategy_base: dict[str, Any],
    budget: str | None,
    device: str | None,
    train_epochs: int | None,
    max_cases: int | None,
    data_root: Path | None,
) -> TuneResult | None:
    """The worker's study (``None`` on the ranks other than 0 of a DDP worker, which follow rank 0's trials);
    ``strategy_base``: every trial's strategy settings before its own values (config section, then ``--set``)."""
    from automl_seg.config import build_settings, section
    from automl_seg.engine.devices import resolve_device
    from automl_seg.engine.distributed import process_group
    from automl_seg.interfaces import new_run_id
    from automl_seg.tune.runner import EngineTrialRunner, EngineTrialSettings

    run_id = new_run_id("tune")  # this worker's run: its trials' runs' parent
    settings = build_settings(EngineTrialSettings, overrides=dict(
        strategy=request.strategy, dataset=request.dataset, study=request.study_name, data_root=data_root,
        max_cases=max_cases, budget=budget or search.get("budget", "quick"),
        device=device or search.get("device", "auto"),
        seed=request.seed, train_epochs=train_epochs, registry=request.registry,
        registry_index=request.registry_index, data_section=section(file, "data"),
        train_section=section(file, "train"), strategy_section=strategy_base, parent_run=run_id,
    ), source="tune settings")  # fmt: skip
    resolve_device(settings.device)  # CUDA asked where there is none: one line now, not a study of failed trials
    with process_group(settings.device) as dist:
        if not dist.is_main:
            EngineTrialRunner(settings, dist).follow()
            return None
        runner = EngineTrialRunner(settings, dist)
        result = _study(request, settings, runner)
        runner.release()  # (a failure instead ends the job: the agent stops the other ranks)
        return result


def _study(request: Any, settings: Any, runner: Any) -> TuneResult:
    """Rank 0's (or the only process') part of a tune worker: check, print the space, run the trials."""
    from automl_seg_registry import Registry

    from automl_seg.engine.budgets import check_search_budget
    from automl_seg.plugins import load_plugins
    from automl_seg.progress import progress_bar
    from automl_seg.tune.run import run_tune, tuning_space
    from automl_seg.tune.storage import open_storage

    host = load_plugins()
    check_search_budget(host, settings.budget, settings.strategy)
    storage = open_storage(request.storage_url)  # an unreachable storage: one line before anything is printed
    with Registry.open(request.registry, request.registry_index):
        pass  # an unusable registry or index: one line now, not a study of failed trials
    with Registry.open(request.registry, request.registry_index):
        pass  # an unusable registry or index: one line now, not a study of failed trials
    _quiet_optuna()
    specs = tuning_space(host, request)[1]
    _print_space(specs)
    runner.check(host, specs)
    with progress_bar(True) as bar:
        task = bar.add_task(f"study {request.study_name}", total=request.trials)

        def advance(trial: Any) -> None:
            bar.update(
                task,
                advance=1,
                description=f"study {request.study_name} (trial {trial.number}: {trial.state.name.lower()})",
            )

        return run_tune(request, host, runner, max_epochs=settings.max_train_epochs,
                        on_trial=advance, storage=storage, run_id=settings.parent_run)  # fmt: skip


@app.command("show")
def show(
    study: Annotated[str, typer.Option("--study", help="Name of the study.")],
    storage: StorageOption = None,
    registry: RegistryOption = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Write the Pareto front (pareto studies) to this PNG.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Trials table, best parameters and parameter importances of a study (works with optuna-dashboard too)."""
    from automl_seg.paths import registry_root
    from automl_seg.tune.pareto import pareto_png
    from automl_seg.tune.report import StudyReport
    from automl_seg.tune.storage import default_storage_url, open_storage, safe_url
    from automl_seg.tune.study import load_study

    if png is not None:
        png = _png_target(png)
    _quiet_optuna()
    url = storage or default_storage_url(registry_root(registry))
    found = load_study(open_storage(url), study)
    written = pareto_png(found, png) if png and len(found.directions) == 2 else None
    report = StudyReport.of(found, safe_url(url), written)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    _print_report(report)
    if written:
        console.print(f"Pareto front: {written}")
    elif png:
        err_console.print("no Pareto PNG: the study has one objective or no completed trial yet")


def _png_target(png: Path) -> Path:
    """``--png`` checked before any work: a .png file in an existing, writable folder (replaced if there)."""
    from automl_seg.errors import ConfigError
    from automl_seg.paths import output_file

    if png.suffix.lower() != ".png":
        raise ConfigError(f"--png {png}: the Pareto front is written as PNG; give a file name ending in .png")
    return output_file(png, overwrite=True, flag="--png")


def _quiet_optuna() -> None:
    """Optuna logs each failed trial with its traceback; the tuner logs the one-line reason instead
    (``--verbose`` keeps Optuna's own messages)."""
    import logging

    import optuna

    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    optuna.logging.set_verbosity(logging.INFO if verbose else logging.ERROR)


# -- printing ---------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _print_space(specs: list[ParameterSpec]) -> None:
    """What this study searches, on stderr (stdout stays clean for --json)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="tuned hyper-parameters")
    for column in ("name", "target", "range", "declared by"):
        table.add_column(column, overflow="fold")
    for spec in specs:
        table.add_row(spec.param.name, spec.param.target, spec.scope, spec.owner)
    err_console.print(table)


def _print_report(report: StudyReport) -> None:
    identity = report.identity
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(report.counts.items())) or "no trials"
    tunes = (
        f"{identity.strategy} on {identity.dataset}, objective {identity.objective}"
        if identity
        else "? on ?, objective ?"
    )
    console.print(f"study [bold]{report.study}[/] ({report.storage}): {tunes}; {counts}", highlight=False)
    with_dice = identity is None or identity.objective != "dice"  # otherwise the value is the Dice
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="trials")
    for column in ("#", "state", "value", *(["Dice"] if with_dice else []), "MB", "ep", "s"):
        table.add_column(column, justify="left" if column == "state" else "right", no_wrap=True)
    # the record (or why the trial failed), then one "name=value" line per parameter: a column each
    # would not fit a terminal once a study tunes ten of them
    table.add_column("record or reason; parameters", overflow="fold")
    for row in report.trials:
        values = ", ".join(_fmt(v, 3) for v in row.values) if row.values else "-"
        params = "\n".join(f"{name}={_fmt(value, 3)}" for name, value in sorted(row.params.items()))
        table.add_row(
            str(row.number), row.state.lower(), values, *([_fmt(row.dice, 3)] if with_dice else []),
            _fmt(row.memory_mb, 4), _fmt(row.last_epoch), _fmt(row.duration_s, 3),
            "\n".join(filter(None, [row.ref or row.reason, params])) or "-",
        )  # fmt: skip
    console.print(table)
    for best in report.best:
        params = ", ".join(f"{k}={_fmt(v, 4)}" for k, v in best.params.items()) or "(none searched)"
        console.print(f"best trial #{best.number}: Dice {_fmt(best.dice)}, {params}", highlight=False)
    if report.importances:
        imp = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="parameter importance (Dice)")
        imp.add_column("parameter")
        imp.add_column("importance", justify="right")
        for name, value in report.importances.items():
            imp.add_row(name, f"{value:.3f}")
        console.print(imp)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="tune")
