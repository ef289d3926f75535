"""A second task from the shared Hippocampus cases: the same structures, small inside large volumes at
0.4 mm, searched and trained with one budget next to the native task, Dice against Dice (run by hand,
not in CI).

The large-volume task (``Task54_HippocampusLarge``, MSD layout, made in ``--workdir``) resamples every
case from 1 mm to ``--spacing`` (images linearly, labels by nearest neighbour), places it at a seeded
random position inside a volume ``--grow`` times larger along every axis whose background is noise
with the statistics of the case's outer shell, and adds a zero border of ``--border`` voxels (which
the planner's crop to the nonzero region removes again). The structure then fills a few percent of
the volume instead of the whole crop, and the native patch of the quick budget (32^3 at 0.4 mm:
13 mm) would see only part of it: the planner coarsens the spacing instead (``data check --budget
quick`` on the made task shows how and why).

Both tasks use the same cases (``--max-cases``: the first N, same ids, so the same split) and the
same strategy, budget and seed; each is scored on its own validation cases on its own native grid
(the large task's low-resolution predictions are mapped back to 0.4 mm). The ratio printed is the
large task's mean Dice against the native one's, with the goal of a difference within 0.05.

    python benchmarks/bench_large_volume.py --max-cases 4 --smoke      # minutes: the pipeline, no figure
    python benchmarks/bench_large_volume.py                            # all 208 cases, quick budget (half an hour)

The full run writes about 2.5 GB of NIfTI files for 208 cases at the default size.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from rich.console import Console
from rich.table import Table

from automl_seg.engine.devices import flush_denormals

SOURCE = "Task04_Hippocampus"
TARGET = "Task54_HippocampusLarge"
GOAL = 0.05
#: tiny schedules for --smoke: the whole pipeline in minutes, no meaningful Dice
SMOKE_TRAIN = {"epochs": 1, "iterations": 5, "val_every": 1, "val_cases": 2}
SMOKE_SEARCH = {"epochs": 2, "warmup_epochs": 1, "max_steps_per_epoch": 2, "measure_memory": False}


def _resample(volume: np.ndarray, zoom: float, labels: bool) -> np.ndarray:
    """``volume`` with ``zoom`` times the voxels along every axis: trilinear, or nearest for labels."""
    import torch
    import torch.nn.functional as F

    shape = [int(round(side * zoom)) for side in volume.shape]
    tensor = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    mode = {"mode": "nearest-exact"} if labels else {"mode": "trilinear", "align_corners": False}
    return F.interpolate(tensor, size=shape, **mode)[0, 0].numpy()


def _shell(image: np.ndarray, width: int = 2) -> np.ndarray:
    inner = np.zeros(image.shape, dtype=bool)
    inner[width:-width, width:-width, width:-width] = True
    return image[~inner]


def enlarge_case(
    image: np.ndarray, label: np.ndarray, spacing: float, grow: float, border: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One case at ``spacing`` mm (from 1 mm) inside a ``grow`` times larger noise volume with a zero border."""
    fine_image = _resample(image, 1.0 / spacing, labels=False)
    fine_label = _resample(label, 1.0 / spacing, labels=True).astype(np.uint8)
    shell = _shell(image.astype(np.float32))
    shape = tuple(int(round(side * grow)) for side in fine_image.shape)
    background = rng.normal(float(shell.mean()), float(shell.std()) + 1e-6, shape).astype(np.float32)
    background = np.clip(background, max(float(shell.min()), 1e-3), None)  # the nonzero region is the volume
    big_label = np.zeros(shape, dtype=np.uint8)
    corner = [int(rng.integers(0, big - small + 1)) for big, small in zip(shape, fine_image.shape, strict=True)]
    region = tuple(slice(c, c + s) for c, s in zip(corner, fine_image.shape, strict=True))
    background[region] = fine_image
    big_label[region] = fine_label
    return np.pad(background, border), np.pad(big_label, border)


def make_large_task(
    source: Path, target: Path, cases: int | None, spacing: float, grow: float, border: int, seed: int
) -> Path:
    """Write the large-volume task (MSD layout) under ``target``; an existing complete one is kept."""
    meta = json.loads((source / "dataset.json").read_text())
    training = meta["training"][:cases] if cases else meta["training"]
    folder = target / TARGET
    done = folder / "dataset.json"
    if done.is_file() and json.loads(done.read_text())["numTraining"] == len(training):
        return folder
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    for entry in training:
        image_file, label_file = source / entry["image"], source / entry["label"]
        image = nib.load(image_file)
        if not np.allclose(image.header.get_zooms()[:3], 1.0):
            raise SystemExit(f"{image_file} is not at 1 mm; this benchmark expects Task04_Hippocampus")
        big_image, big_label = enlarge_case(
            np.asanyarray(image.dataobj), np.asanyarray(nib.load(label_file).dataobj), spacing, grow, border, rng
        )
        nib.save(nib.Nifti1Image(big_image, affine), folder / entry["image"])
        nib.save(nib.Nifti1Image(big_label, affine), folder / entry["label"])
    meta.update(name=TARGET, training=training, numTraining=len(training), test=[], numTest=0)
    done.write_text(json.dumps(meta, indent=2))
    return folder


def run_task(dataset: str, data_root: Path, options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Search, retrain and evaluate ``dataset`` with the options' strategy and budget; its plan and Dice."""
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings, train_settings
    from automl_seg.plugins import load_plugins

    run = SearchRunSettings(
        strategy=options.strategy, budget=options.budget, seed=options.seed, device=options.device,
        workdir=workdir / f"run-{dataset}", progress=True,
    )  # fmt: skip
    data = DataSettings(dataset=dataset, data_root=data_root, max_cases=options.max_cases)
    train = train_settings(options.budget, overrides=SMOKE_TRAIN if options.smoke else None)
    strategy = SMOKE_SEARCH if options.smoke and options.strategy == "dints" else {}
    with Registry.open(workdir / "registry") as registry:
        result = run_search(run, data, train, strategy, registry=registry, host=load_plugins(), promote=False)
    assert result.trained is not None
    plan = result.trained.record.dataset.plan
    return {
        "dataset": dataset,
        "spacing": plan["spacing"],
        "patch": plan["patch_size"],
        "why": plan.get("rationale", ""),
        "dice": result.trained.evaluation.dice_per_class,
        "dice_mean": result.trained.evaluation.dice_mean,
        "train_s": result.trained.record.metrics.train_time_s,
    }


def main() -> None:
    flush_denormals()  # as the CLI does, before any parallel work starts torch's threads
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("AUTOML_SEG_DATA", "data")))
    parser.add_argument("--workdir", type=Path, default=None, help="made task, runs and registry (default: temp)")
    parser.add_argument("--max-cases", type=int, default=None, help="the first N cases of both tasks")
    parser.add_argument("--smoke", action="store_true", help="tiny search and training: checks the pipeline only")
    parser.add_argument("--strategy", default="dints")
    parser.add_argument("--budget", default="quick")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spacing", type=float, default=0.4, help="mm of the large task's voxels")
    parser.add_argument("--grow", type=float, default=1.5, help="volume side / the resampled case's side")
    parser.add_argument("--border", type=int, default=8, help="zero voxels around every large volume")
    options = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        workdir = options.workdir or Path(tmp)
        large_root = workdir / "data"
        console.print(f"making {TARGET} under {large_root} ...")
        make_large_task(
            options.data_root / SOURCE, large_root, options.max_cases, options.spacing, options.grow,
            options.border, options.seed,
        )  # fmt: skip
        native = run_task(SOURCE, options.data_root, options, workdir)
        large = run_task(TARGET, large_root, options, workdir)
    cases = options.max_cases or "all"
    table = Table(title=f"{options.strategy}, {options.budget} budget, {cases} cases, seed {options.seed}")
    for column in ("task", "plan spacing (mm)", "patch", "Dice per class", "mean Dice", "train s"):
        table.add_column(column)
    for row in (native, large):
        table.add_row(
            row["dataset"], "x".join(f"{s:.3g}" for s in row["spacing"]), "x".join(map(str, row["patch"])),
            ", ".join(f"{k} {v:.3f}" for k, v in row["dice"].items()), f"{row['dice_mean']:.3f}",
            f"{row['train_s']:.0f}" if row["train_s"] else "-",
        )  # fmt: skip
    console.print(table)
    console.print(f"large-volume plan: {large['why']}")
    gap = native["dice_mean"] - large["dice_mean"]
    ratio = large["dice_mean"] / native["dice_mean"] if native["dice_mean"] else float("nan")
    verdict = f"{'within' if gap <= GOAL else 'outside'} the {GOAL} goal"
    if options.smoke:
        verdict = "smoke run: no figure"
    console.print(f"large / native mean Dice: {ratio:.3f} (difference {gap:+.3f}; {verdict})")


if __name__ == "__main__":
    main()
