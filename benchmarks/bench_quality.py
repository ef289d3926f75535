"""Model quality on cases no training run sees: the training recipe's ablation, and Dice versus wall clock
for the quick and standard budgets (DiNTS and the fixed DynUNet), in one process (run by hand, not in CI).

Every run holds the same seeded 20 % of the cases out (``DataSettings.holdout_fraction``, seeded by the
split seed): no search, training or validation sees them, and every Dice below is measured on them.

Ablation: one architecture (the fixed strategy's DynUNet at the chosen budget) retrained with the budget's
recipe, then with one ingredient changed at a time (nnU-Net's foreground share, rotation/scaling, gamma,
noise/blur, warm-up): taken away where the budget's preset has it, added where it does not (``quick``
trains without most of them); deep supervision, and flips along every axis where the plan leaves some
out (Hippocampus: all), are always added. Each row's difference is against
the budget's recipe, measured in the same run with the same seed. Curve: ``search`` for every (strategy, budget)
pair, its wall-clock minutes (search + retraining + validation) and held-out Dice, each against the
quick DiNTS run of the same process. Folds: one strategy's architecture (``--strategy``, the fixed
DynUNet by default) at the budget trained once (the reference: the single model ``search`` gives), then
cross-validated (``--folds``, nnU-Net's 5 by default) and scored as the ensemble of its folds (softmax
averaged), without and with the postprocessing chosen on the out-of-fold cases.

    python benchmarks/bench_quality.py                      # ablation and curve on Task04_Hippocampus (hours)
    python benchmarks/bench_quality.py --table ablation --budget standard
    python benchmarks/bench_quality.py --table ablation --budget quick --rows deep-supervision --seed 1
    python benchmarks/bench_quality.py --table curve --budgets quick,standard --strategies dints,fixed
    python benchmarks/bench_quality.py --table folds --budget quick --folds 5
    python benchmarks/bench_quality.py --table folds --budget quick --folds 5 --strategy dints
    python benchmarks/bench_quality.py --smoke              # minutes: 12 cases, a few steps, every code path
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from automl_seg.config import DataSettings
from automl_seg.engine.devices import flush_denormals
from automl_seg.plugins import PluginHost, load_plugins


@dataclass(frozen=True)
class Ingredient:
    """One recipe ingredient and the training settings that turn it on and off. The ablation takes it away
    where the budget's preset has it and adds it (at the ``standard`` preset's value) where it does not, so
    one table asks both "does it earn its place?" and "would it help here?". A change of the network
    (``strategy``) or of the plan (``data``) is always added."""

    name: str  #: what ``--rows`` selects it by
    label: str
    on: Mapping[str, Any] = field(default_factory=dict)
    off: Mapping[str, Any] = field(default_factory=dict)
    strategy: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)

    def row(self, preset: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The row's label and training overrides against ``preset`` (a budget's ``TRAIN_PRESETS`` entry)."""
        from automl_seg.engine.settings import TrainSettings

        defaults = TrainSettings.model_fields
        present = all(preset.get(key, defaults[key].default) == value for key, value in self.on.items())
        if present and not (self.strategy or self.data):
            return f"- {self.label}", dict(self.off)
        return f"+ {self.label}", dict(self.on)


INGREDIENTS: list[Ingredient] = [
    Ingredient(
        "oversampling",
        "nnU-Net's foreground share (0.33, not 0.5)",
        on={"foreground_ratio": 0.33},
        off={"foreground_ratio": 0.5},
    ),
    Ingredient("spatial", "rotation/scaling (p 0.2)", on={"spatial_aug": 0.2}, off={"spatial_aug": 0.0}),
    Ingredient("gamma", "gamma (p 0.3)", on={"gamma_aug": 0.3}, off={"gamma_aug": 0.0}),
    Ingredient("noise", "noise/blur (p 0.1)", on={"noise_blur_aug": 0.1}, off={"noise_blur_aug": 0.0}),
    Ingredient("warmup", "warm-up (200 steps)", on={"warmup_steps": 200}, off={"warmup_steps": 0}),
    Ingredient("mirror", "flips along every axis (nnU-Net's default), not the plan's", data={"mirror_axes": (0, 1, 2)}),
    Ingredient("deep-supervision", "deep supervision (2 heads)", strategy={"deep_supervision": 2}),
]

#: --smoke: a few cases and steps, so every path runs in minutes
SMOKE_TRAIN = {"epochs": 1, "iterations": 2, "val_every": 1, "val_cases": 1, "warmup_steps": 1}
SMOKE_STRATEGY = {"dints": {"epochs": 2, "warmup_epochs": 1, "max_steps_per_epoch": 1, "measure_memory": False}}


@dataclass
class Outcome:
    label: str
    dice: dict[str, float]
    dice_mean: float
    wall_s: float


def data_settings(args: argparse.Namespace, **plan: Any) -> DataSettings:
    return DataSettings(
        **plan,
        dataset=args.dataset,
        data_root=args.data_root,
        holdout_fraction=args.holdout,
        split_seed=args.seed,
        max_cases=12 if args.smoke else None,
        patch_size=(32, 32, 32) if args.smoke else None,
    )


def held_out_dice(
    registry: Any, ref: str, host: PluginHost, args: argparse.Namespace, postprocessing: Any = None
) -> tuple[dict[str, float], float]:
    """The model's Dice on the held-out cases of its own split settings (its stored postprocessing, or
    ``postprocessing`` instead)."""
    from automl_seg.engine.evaluate import evaluate_reference

    report = evaluate_reference(
        registry, ref, host, device=args.device, data_root=args.data_root, split="test", progress=False,
        postprocessing=postprocessing,
    )  # fmt: skip
    return report.dice_per_class, report.dice_mean


def search_run(
    registry: Any,
    host: PluginHost,
    args: argparse.Namespace,
    strategy: str,
    budget: str,
    train: Mapping[str, Any],
    strategy_settings: Mapping[str, Any] | None = None,
    plan: Mapping[str, Any] | None = None,
) -> tuple[Any, float]:
    """One whole ``search`` (search, retraining, validation): its result and wall-clock seconds."""
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings, train_settings

    run = SearchRunSettings(
        strategy=strategy, budget=budget, seed=args.seed, device=args.device, progress=False,
        workdir=Path(tempfile.mkdtemp(prefix=f"quality-{strategy}-{budget}-")),
    )  # fmt: skip
    overrides = {**(SMOKE_STRATEGY.get(strategy, {}) if args.smoke else {}), **(strategy_settings or {})}
    began = time.perf_counter()
    result = run_search(
        run, data_settings(args, **(plan or {})), train_settings(budget, overrides=dict(train)), overrides,
        registry=registry, host=host, promote=False,
    )  # fmt: skip
    return result, time.perf_counter() - began


def ablation(registry: Any, host: PluginHost, args: argparse.Namespace) -> list[Outcome]:
    """The fixed architecture retrained with the budget's recipe, then with each ingredient taken away or
    added (``--rows``: only those); a change of the network (deep supervision) is a new search run."""
    from automl_seg.engine.pipeline import retrain
    from automl_seg.engine.settings import TRAIN_PRESETS, RunSettings, train_settings

    smoke = SMOKE_TRAIN if args.smoke else {}
    first, wall = search_run(registry, host, args, "fixed", args.budget, smoke)
    rows = [Outcome(f"{args.budget} recipe", *held_out_dice(registry, first.trained.record.ref, host, args), wall)]
    for item in chosen_ingredients(args.rows):
        label, change = item.row(TRAIN_PRESETS.get(args.budget, {}))
        began = time.perf_counter()
        if item.strategy:
            result, _ = search_run(registry, host, args, "fixed", args.budget, smoke, item.strategy, item.data)
            ref = result.trained.record.ref
        else:
            run = RunSettings(budget=args.budget, seed=args.seed, device=args.device, progress=False,
                              workdir=Path(tempfile.mkdtemp(prefix="quality-ablation-")))  # fmt: skip
            train = train_settings(args.budget, overrides={**smoke, **change})
            ref = retrain(first.architecture.ref, run, train, registry=registry, host=host,
                          data_options={"data_root": args.data_root, **item.data}).record.ref  # fmt: skip
        rows.append(Outcome(label, *held_out_dice(registry, ref, host, args), time.perf_counter() - began))
    return rows


def chosen_ingredients(rows: str | None) -> list[Ingredient]:
    """The ablation rows ``--rows`` names (comma-separated), all when None."""
    if rows is None:
        return INGREDIENTS
    by_name = {item.name: item for item in INGREDIENTS}
    unknown = [name for name in rows.split(",") if name not in by_name]
    if unknown:
        raise SystemExit(f"error: unknown ablation row {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[name] for name in rows.split(",")]


def curve(registry: Any, host: PluginHost, args: argparse.Namespace) -> list[Outcome]:
    """Held-out Dice and wall clock of a whole search per (strategy, budget)."""
    rows = []
    for strategy in args.strategies.split(","):
        for budget in args.budgets.split(","):
            result, wall = search_run(registry, host, args, strategy, budget, SMOKE_TRAIN if args.smoke else {})
            rows.append(
                Outcome(f"{strategy} {budget}", *held_out_dice(registry, result.trained.record.ref, host, args), wall)
            )
    return rows


def cross_validation(registry: Any, host: PluginHost, args: argparse.Namespace) -> list[Outcome]:
    """``--strategy``'s architecture searched and trained once (the reference), then cross-validated on the
    same cases and scored as the ensemble of its folds, without and with the postprocessing chosen out of
    fold."""
    from automl_seg.engine.folds import CrossValResult, fold_summary
    from automl_seg.engine.pipeline import retrain
    from automl_seg.engine.postprocess import Postprocessing
    from automl_seg.engine.settings import RunSettings, train_settings

    smoke = SMOKE_TRAIN if args.smoke else {}
    single, wall = search_run(registry, host, args, args.strategy, args.budget, smoke)
    rows = [Outcome("single model", *held_out_dice(registry, single.trained.record.ref, host, args), wall)]
    run = RunSettings(budget=args.budget, seed=args.seed, device=args.device, progress=False, folds=args.folds,
                      workdir=Path(tempfile.mkdtemp(prefix="quality-folds-")))  # fmt: skip
    began = time.perf_counter()
    result = retrain(single.architecture.ref, run, train_settings(args.budget, overrides=dict(smoke)),
                     registry=registry, host=host, data_options={"data_root": args.data_root})  # fmt: skip
    wall = time.perf_counter() - began
    if not isinstance(result, CrossValResult) or result.record is None or result.postprocessing is None:
        raise SystemExit(f"error: the cross-validation left folds {getattr(result, 'pending', '?')} untrained")
    mean, sd = fold_summary(result.folds)
    folds = f"{args.folds}-fold ensemble"
    kept = ", ".join(result.postprocessing.keep_largest) or "no class"
    rows.append(Outcome(folds, *held_out_dice(registry, result.record.ref, host, args, Postprocessing()), wall))
    rows.append(Outcome(f"{folds} + largest component of {kept}",
                        *held_out_dice(registry, result.record.ref, host, args), wall))  # fmt: skip
    Console().print(
        f"fold validation Dice (mean ± sd over {args.folds} folds): "
        + ", ".join(f"{name} {mean[name]:.3f} ± {sd[name]:.3f}" for name in mean)
    )
    return rows


def table(title: str, rows: list[Outcome], reference: Outcome) -> Table:
    out = Table(title=title)
    names = list(reference.dice)
    for column in ["run", *(f"Dice {n}" for n in names), "mean Dice", "vs reference", "wall min", "wall vs reference"]:
        out.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        out.add_row(
            row.label, *(f"{row.dice[n]:.3f}" for n in names), f"{row.dice_mean:.3f}",
            f"{row.dice_mean - reference.dice_mean:+.3f}", f"{row.wall_s / 60:.1f}",
            f"{row.wall_s / reference.wall_s:.2f}x",
        )  # fmt: skip
    out.caption = f"reference: {reference.label}; Dice on the held-out cases (holdout_fraction, never trained on)"
    return out


def main() -> None:
    flush_denormals()  # as the CLI does, before any parallel work starts torch's threads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Task04_Hippocampus")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--table", choices=["ablation", "curve", "folds", "both"], default="both")
    parser.add_argument("--budget", default="standard", help="the ablation's and the folds table's budget")
    parser.add_argument("--rows", default=None, help="the ablation's rows, e.g. deep-supervision,warmup (all)")
    parser.add_argument("--budgets", default="quick,standard", help="the curve's budgets")
    parser.add_argument("--strategies", default="dints,fixed", help="the curve's strategies")
    parser.add_argument("--folds", type=int, default=5, help="the folds table's cross-validation folds")
    parser.add_argument("--strategy", default="fixed", help="the folds table's strategy (its architecture)")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--registry", type=Path, default=None, help="default: a temporary one")
    parser.add_argument("--smoke", action="store_true", help="12 cases, 32^3 patches, a few steps: checks every path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from automl_seg_registry import Registry

    console = Console()
    host = load_plugins()
    with (
        tempfile.TemporaryDirectory(prefix="quality-registry-") as tmp,
        Registry.open(args.registry or Path(tmp)) as reg,
    ):
        if args.table in ("ablation", "both"):
            rows = ablation(reg, host, args)
            console.print(table(f"recipe ablation, fixed DynUNet, {args.budget} budget", rows, rows[0]))
        if args.table in ("curve", "both"):
            rows = curve(reg, host, args)
            console.print(table("held-out Dice versus wall clock (search + retrain + validation)", rows, rows[0]))
        if args.table == "folds":
            rows = cross_validation(reg, host, args)
            title = f"cross-validation and ensembling, {args.strategy} strategy, {args.budget} budget (wall: training)"
            console.print(table(title, rows, rows[0]))


if __name__ == "__main__":
    main()
