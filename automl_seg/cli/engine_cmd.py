"""Top-level engine commands: ``search``, ``train``, ``evaluate`` and ``predict``.

They parse flags and config files, call ``automl_seg.engine`` and print; torch and MONAI are
imported inside the commands so ``automl-seg --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import typer
from rich import box
from rich.table import Table

from automl_seg.cli.common import (
    ConfigOption,
    DataRootOption,
    EnsembleOption,
    JsonFlag,
    MlflowOption,
    NprocOption,
    RegistryOption,
    SetOption,
    console,
    launched_as_job,
    mlflow_tracking,
    model_refs,
    print_json,
)
from automl_seg.config import DataSettings, Device, build_settings, check_sections, read_config_file, section
from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    from automl_seg.engine.evaluate import EvalReport
    from automl_seg.engine.folds import CrossValResult

RefArgument = Annotated[str, typer.Argument(help="Registered model: NAME, NAME:VERSION, NAME@ALIAS or 'latest'.")]
BudgetOption = Annotated[
    str | None,
    typer.Option(
        "--budget",
        help="Preset by name: quick (2-core CPU, minutes; the default), standard (2-core CPU, up to an hour), "
        "full (GPU); plugins may offer more.",
    ),
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")]
DeviceOption = Annotated[Device | None, typer.Option("--device", help="auto picks CUDA when available.")]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", help="Processes preparing training batches (default: none on CPU, up to 8 on CUDA)."),
]
TtaOption = Annotated[
    bool, typer.Option("--tta", help="Test-time mirroring: the mean of the 8 flips of every window (8x the time).")
]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue the interrupted run from its checkpoint.")]
WorkdirOption = Annotated[
    Path | None, typer.Option("--workdir", help="Checkpoint folder (default: a per-run folder in the user cache).")
]
MaxCasesOption = Annotated[int | None, typer.Option("--max-cases", help="Use only the first N cases (smoke runs).")]
PatchOption = Annotated[
    str | None, typer.Option("--patch-size", help="Override the plan's patch, e.g. 32x48x32 (multiples of 16).")
]
FoldsOption = Annotated[
    int | None,
    typer.Option("--folds", help="Cross-validate: one model per fold (seeded splits), registered as one record."),
]
FoldOption = Annotated[
    int | None, typer.Option("--fold", help="Train only this fold (0-based) of --folds; registers when all are done.")
]
OptionalRefArgument = Annotated[
    str | None,
    typer.Argument(help="Registered model: NAME, NAME:VERSION, NAME@ALIAS or 'latest' (or give --ensemble)."),
]
KeepLargestOption = Annotated[
    str | None,
    typer.Option(
        "--keep-largest",
        help="Replace the stored postprocessing: classes (comma separated) keeping only their largest component, "
        "or 'none'.",
    ),
]
ProgressOption = Annotated[bool | None, typer.Option("--progress/--no-progress", help="Show progress bars.")]
ProgressFlag = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]  # no config
RESUME_HINT = "rerun it with --resume to continue"

CONFIG_SECTIONS = {"data", "train", "search", "strategy"}


def parse_patch(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        sides = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--patch-size {text!r} is not like 32x48x32") from None
    if len(sides) != 3:
        raise ConfigError(f"--patch-size {text!r} needs 3 sides, like 32x48x32")
    return sides


def load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    config = read_config_file(path)
    check_sections(config, CONFIG_SECTIONS, path)
    return config


def _open_registry(path: Path | None):  # noqa: ANN202 - Registry, imported lazily
    from automl_seg_registry import Registry

    return Registry.open(path)


def _dice_table(report: EvalReport, title: str, per_case: bool = True) -> Table:
    names = list(report.dice_per_class)
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("case")
    for name in names:
        table.add_column(f"Dice {name}", justify="right")
    for name in names:
        table.add_column(f"HD95 {name}", justify="right")

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    if per_case:
        for row in report.cases:
            table.add_row(row.case, *(fmt(row.dice[n]) for n in names), *(fmt(row.hd95[n]) for n in names))
        table.add_section()
    table.add_row(
        "[bold]mean[/]",
        *(f"[bold]{report.dice_per_class[n]:.3f}[/]" for n in names),
        *(fmt(report.hd95_per_class[n]) for n in names),
    )
    return table


def _summary(result: Any) -> dict[str, Any]:
    """What --json prints for a trained model."""
    return {
        "ref": result.record.ref,
        "parent": result.record.parent,
        "promoted_best": result.promoted,
        "metrics": result.record.metrics.model_dump(mode="json"),
        "history": result.train.history,
    }


def _cv_summary(result: CrossValResult) -> dict[str, Any]:
    """What --json prints for a cross-validation (finished or with folds still to train)."""
    return {
        "ref": result.record.ref if result.record else None,
        "parent": result.record.parent if result.record else None,
        "folds_done": [f.fold for f in result.folds],
        "folds_pending": result.pending,
        "metrics": result.record.metrics.model_dump(mode="json") if result.record else None,
        "postprocessing": result.postprocessing.model_dump(mode="json") if result.postprocessing else None,
        "workdir": str(result.workdir),
    }


def _print_cross_validation(result: CrossValResult) -> None:
    """Per-class Dice of every finished fold, their mean and standard deviation, and what is registered."""
    from automl_seg.engine.folds import fold_summary

    if not result.folds:
        return
    names = list(result.folds[0].evaluation.dice_per_class)
    table = Table(title="cross-validation (validation Dice per fold)", box=box.SIMPLE_HEAD)
    table.add_column("fold")
    table.add_column("cases", justify="right")
    for name in names:
        table.add_column(f"Dice {name}", justify="right")
    for f in result.folds:
        table.add_row(str(f.fold), str(len(f.val_cases)), *(f"{f.evaluation.dice_per_class[n]:.3f}" for n in names))
    mean, sd = fold_summary(result.folds)
    table.add_section()
    table.add_row("[bold]mean ± sd[/]", "", *(f"[bold]{mean[n]:.3f}[/] ± {sd[n]:.3f}" for n in names))
    console.print(table)
    if result.record is None:
        pending = ", ".join(map(str, result.pending))
        console.print(f"fold(s) {pending} still to train; nothing registered yet (workdir {result.workdir})")
        return
    kept = ", ".join(result.postprocessing.keep_largest) if result.postprocessing else ""
    console.print(f"postprocessing: keep the largest component of {kept or 'no class'} (chosen on validation)")
    console.print(f"registered [bold]{result.record.ref}[/] ({len(result.folds)} folds, parent {result.record.parent})")


def keep_largest_override(text: str | None, registry: Any, refs: list[str]) -> Any:
    """``--keep-largest`` as a ``Postprocessing`` checked against the first model's classes (None: stored)."""
    if text is None:
        return None
    from automl_seg.engine.model import record_plan
    from automl_seg.engine.postprocess import parse_keep_largest

    return parse_keep_largest(text, record_plan(registry.get(refs[0])))


def search(
    ctx: typer.Context,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="Search strategy, e.g. dints or fixed (installed: `automl-seg plugins list`)."),
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="MSD task name.")] = None,
    data_root: DataRootOption = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    budget: BudgetOption = None,
    assignments: SetOption = None,
    train_epochs: Annotated[int | None, typer.Option("--train-epochs", help="Retraining epochs.")] = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    workers: WorkersOption = None,
    resume: ResumeOption = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="Only search and register the architecture.")] = False,
    workdir: WorkdirOption = None,
    max_cases: MaxCasesOption = None,
    patch_size: PatchOption = None,
    folds: FoldsOption = None,
    fold: FoldOption = None,
    progress: ProgressOption = None,
    nproc: NprocOption = None,
    mlflow: MlflowOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Search an architecture, register it, retrain and evaluate it, register the trained model."""
    from automl_seg.engine.budgets import check_search_budget
    from automl_seg.engine.distributed import process_group
    from automl_seg.engine.options import chosen_strategy, parse_assignments
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings, train_settings
    from automl_seg.plugins import load_plugins

    cfg = load_config(config)
    run = build_settings(
        SearchRunSettings,
        section(cfg, "search"),
        {"strategy": strategy, "budget": budget, "seed": seed, "device": device, "workers": workers,
         "workdir": workdir, "resume": resume or None, "no_train": no_train or None, "progress": progress,
         "folds": folds, "fold": fold},
        source="search settings",
    )  # fmt: skip
    data = build_settings(
        DataSettings,
        section(cfg, "data"),
        {"dataset": dataset, "data_root": data_root, "max_cases": max_cases, "patch_size": parse_patch(patch_size)},
        source="data settings",
    )
    host = load_plugins()
    check_search_budget(host, run.budget, chosen_strategy(host, run.strategy).name)
    train = train_settings(run.budget, section(cfg, "train"), {"epochs": train_epochs})
    overrides = {**section(cfg, "strategy"), **parse_assignments(assignments or [])}
    if launched_as_job(ctx, nproc, run.device, RESUME_HINT):
        return
    with mlflow_tracking(mlflow), process_group(run.device) as dist, _open_registry(registry) as reg:
        result = run_search(run, data, train, overrides, registry=reg, host=host, dist=dist)
    if not dist.is_main:
        return
    if as_json:
        print_json(
            {
                "architecture": result.architecture.ref,
                "arch": result.architecture.arch,
                "search_metrics": result.architecture.metrics.model_dump(mode="json"),
                "trained": _summary(result.trained) if result.trained else None,
                "cross_validation": _cv_summary(result.cross_validated) if result.cross_validated else None,
                "workdir": str(result.workdir),
            }
        )
        return
    console.print(f"architecture registered as [bold]{result.architecture.ref}[/]")
    if result.cross_validated:
        _print_cross_validation(result.cross_validated)
    if result.trained:
        trained = result.trained
        console.print(_dice_table(trained.evaluation, f"validation of {trained.record.ref}", per_case=False))
        console.print(
            f"trained model registered as [bold]{trained.record.ref}[/] (parent {trained.record.parent})"
            + (", now [green]best[/]" if trained.promoted else "")
        )


def train(
    ctx: typer.Context,
    ref: RefArgument,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Training epochs (default: the budget's).")] = None,
    budget: BudgetOption = None,
    registry: RegistryOption = None,
    data_root: DataRootOption = None,
    config: ConfigOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    workers: WorkersOption = None,
    resume: ResumeOption = False,
    workdir: WorkdirOption = None,
    max_cases: MaxCasesOption = None,
    folds: FoldsOption = None,
    fold: FoldOption = None,
    progress: ProgressOption = None,
    nproc: NprocOption = None,
    mlflow: MlflowOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Retrain a registered architecture from scratch; register it as a new version (parent REF)."""
    from automl_seg.engine.distributed import process_group
    from automl_seg.engine.folds import CrossValResult
    from automl_seg.engine.pipeline import retrain
    from automl_seg.engine.settings import RunSettings, SearchRunSettings, train_settings
    from automl_seg.plugins import load_plugins

    cfg = load_config(config)
    search_only = SearchRunSettings.model_fields.keys() - RunSettings.model_fields.keys()  # a shared run.yaml
    run = build_settings(
        RunSettings,
        {k: v for k, v in section(cfg, "search").items() if k not in search_only},
        {"budget": budget, "seed": seed, "device": device, "workers": workers, "workdir": workdir,
         "resume": resume or None, "progress": progress, "folds": folds, "fold": fold},
        source="run settings",
    )  # fmt: skip
    settings = train_settings(run.budget, section(cfg, "train"), {"epochs": epochs})
    flags = {"data_root": data_root, "max_cases": max_cases}
    data = {**section(cfg, "data"), **{k: v for k, v in flags.items() if v is not None}}
    from_record = sorted(set(data) & {"dataset", "patch_size"})
    if from_record:
        raise ConfigError(
            f"config file {config}: train takes {' and '.join(from_record)} from the registered record; "
            "remove it from section 'data'"
        )
    if launched_as_job(ctx, nproc, run.device, RESUME_HINT):
        return
    with mlflow_tracking(mlflow), process_group(run.device) as dist, _open_registry(registry) as reg:
        result = retrain(ref, run, settings, registry=reg, host=load_plugins(), data_options=data, dist=dist)
    if not dist.is_main:
        return
    if isinstance(result, CrossValResult):
        if as_json:
            print_json(_cv_summary(result))
        else:
            _print_cross_validation(result)
        return
    if as_json:
        print_json(_summary(result))
        return
    console.print(_dice_table(result.evaluation, f"validation of {result.record.ref}", per_case=False))
    console.print(
        f"registered [bold]{result.record.ref}[/] (parent {result.record.parent})"
        + (", now [green]best[/]" if result.promoted else "")
    )


def evaluate(
    ctx: typer.Context,
    ref: OptionalRefArgument = None,
    ensemble: EnsembleOption = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Evaluate on this dataset's validation split.")
    ] = None,
    images: Annotated[Path | None, typer.Option("--images", help="Folder of NIfTI images.")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Folder of NIfTI labels (same file names).")] = None,
    data_root: DataRootOption = None,
    registry: RegistryOption = None,
    device: DeviceOption = None,
    max_cases: MaxCasesOption = None,
    tta: TtaOption = False,
    split: Annotated[
        str, typer.Option("--split", help="val, or test: the cases held out by data.holdout_fraction.")
    ] = "val",
    keep_largest: KeepLargestOption = None,
    progress: ProgressFlag = True,
    nproc: NprocOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Dice and HD95 per class and per case, on a dataset's validation split or on image/label folders."""
    from automl_seg.engine.distributed import process_group
    from automl_seg.engine.evaluate import evaluate_reference
    from automl_seg.plugins import load_plugins

    if (images is None) != (labels is None):
        raise ConfigError("give both --images and --labels (or neither, to use --dataset's validation split)")
    if images is not None and dataset is not None:
        raise ConfigError("give either --dataset or --images/--labels, not both")
    if split not in ("val", "test"):
        raise ConfigError(f"unknown --split {split!r}; use val or test")
    refs = model_refs(ref, ensemble)
    if launched_as_job(ctx, nproc, device or "auto", None):
        return
    with process_group(device or "auto") as dist, _open_registry(registry) as reg:
        report = evaluate_reference(
            reg, refs, load_plugins(), device=device or "auto", dataset=dataset, data_root=data_root,
            images=images, labels=labels, max_cases=max_cases, tta=tta, progress=progress,
            split=cast(Literal["val", "test"], split),  # checked above
            postprocessing=keep_largest_override(keep_largest, reg, refs), dist=dist,
        )  # fmt: skip
    if not dist.is_main:
        return
    shown = ",".join(refs)
    if as_json:
        print_json({"ref": shown, "tta": tta, "split": split, **report.model_dump(mode="json")})
        return
    console.print(_dice_table(report, f"evaluation of {shown}" + (" (test-time mirroring)" if tta else "")))


def predict(
    input: Annotated[Path, typer.Option("--input", "-i", help="A NIfTI file or a folder of them.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the label maps.")],
    ref: OptionalRefArgument = None,
    ensemble: EnsembleOption = None,
    keep_largest: KeepLargestOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="torch; onnxruntime (needs `automl-seg export REF --format onnx`); or torch-export "
            "(needs `automl-seg export REF --format torch-export`, runs on --device).",
        ),
    ] = "torch",
    providers: Annotated[
        str | None, typer.Option("--providers", help="onnxruntime providers, comma separated, in order.")
    ] = None,
    registry: RegistryOption = None,
    device: DeviceOption = None,
    tta: TtaOption = False,
    progress: ProgressFlag = True,
    as_json: JsonFlag = False,
) -> None:
    """Segment NIfTI images: one label map per input, same name, same shape, affine and header."""
    from automl_seg.engine.predict import Backend, predict_reference
    from automl_seg.plugins import load_plugins

    if backend not in ("torch", "onnxruntime", "torch-export"):
        raise ConfigError(f"unknown --backend {backend!r}; use torch, onnxruntime or torch-export")
    if providers and backend != "onnxruntime":
        raise ConfigError(
            "--providers picks onnxruntime's providers; add --backend onnxruntime (torch and torch-export use --device)"
        )
    provider_list = [p.strip() for p in providers.split(",") if p.strip()] if providers else None
    refs = model_refs(ref, ensemble)
    ref = ",".join(refs)
    with _open_registry(registry) as reg:
        predictions, used = predict_reference(
            reg, refs, load_plugins(), input, output, device=device or "auto", backend=cast(Backend, backend),
            providers=provider_list, overwrite=overwrite, tta=tta, progress=progress,
            postprocessing=keep_largest_override(keep_largest, reg, refs),
        )  # fmt: skip
    if as_json:
        print_json(
            {
                "ref": ref,
                "backend": backend,
                "providers": used,
                "tta": tta,
                "outputs": [
                    {
                        "case": p.case,
                        "input": str(p.source),
                        "output": str(p.output),
                        "shape": list(p.shape),
                        "resampling": p.resampling,
                    }  # fmt: skip
                    for p in predictions
                ],
            }
        )
        return
    table = Table(title=f"predictions of {ref} ({backend}{': ' + ', '.join(used) if used else ''})", box=box.SIMPLE)
    for column in ("case", "shape", "labels", "output"):
        table.add_column(column)
    for p in predictions:
        table.add_row(p.case, "x".join(map(str, p.shape)), ",".join(map(str, p.labels_present)), str(p.output))
    if predictions:
        table.caption = f"resampling: {predictions[0].resampling}"
    console.print(table)


def register(root: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    root.command("search")(search)
    root.command("train")(train)
    root.command("evaluate")(evaluate)
    root.command("predict")(predict)
