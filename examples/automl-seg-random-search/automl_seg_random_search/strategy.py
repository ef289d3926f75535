"""The ``random`` strategy: random search over the ``dints`` topology space (the classic NAS baseline).

Each trial draws architectures from the space (``space.sample_arch(args, rng)``) until one fits the
memory budget (``space.estimate_memory(args, arch, plan)["fraction"]``), trains it briefly from
scratch on half of the training cases with automl-seg's own training loop, and scores it (mean
Dice) on the other half, so the validation split stays untouched for the final evaluation. The
best-scoring architecture wins. With ``time_budget_s`` the number of candidates follows from the
device seconds they cost (so random search can be given exactly what another search spent). It only
uses the public space object from the search context and automl-seg's public engine, never the
DiNTS plugin's internals.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from automl_seg.errors import PluginError, UserError
from automl_seg.interfaces import (
    MemoryEstimatingSpace,
    MemoryFigures,
    SamplingSpace,
    SearchContext,
    SearchOutcome,
)
from automl_seg_random_search.settings import PRESETS, RandomSettings, random_settings

log = logging.getLogger(__name__)

TRIALS_FILE = "trials.json"
#: what the strategy needs from its search space, beyond the SearchSpace protocol: method -> ability
SPACE_ABILITIES: dict[str, type] = {"sample_arch": SamplingSpace, "estimate_memory": MemoryEstimatingSpace}
SPACE_METHODS = tuple(SPACE_ABILITIES)


def split_training_cases(cases: list[str], seed: int) -> tuple[list[str], list[str]]:
    """A seeded half/half split of the training cases: candidates fit on the first, are scored on the second."""
    shuffled = sorted(cases)
    random.Random(seed).shuffle(shuffled)
    if len(shuffled) < 2:
        raise UserError(f"random search needs at least 2 training cases to fit and score candidates, got {len(cases)}")
    half = len(shuffled) // 2
    return shuffled[half:], shuffled[:half]


def draw_within_budget(ctx: SearchContext, settings: RandomSettings, rng: random.Random) -> tuple[dict, dict]:
    """Architectures are drawn until one's estimated memory fraction fits ``settings.memory_budget``."""
    space = ctx.space
    assert isinstance(space, SamplingSpace) and isinstance(space, MemoryEstimatingSpace)  # checked by search
    smallest = float("inf")
    for _ in range(settings.max_draws):
        arch = space.sample_arch(ctx.space_args, rng)
        memory = space.estimate_memory(ctx.space_args, arch, ctx.data.plan)
        if memory["fraction"] <= settings.memory_budget:
            return arch, memory
        smallest = min(smallest, memory["fraction"])
    raise UserError(
        f"memory budget {settings.memory_budget:g} admits none of {settings.max_draws} random architectures "
        f"(smallest drawn: {smallest:.3f} of the full supernet); raise it with --set memory_budget=..."
    )


def _save_trials(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically, so a killed run never leaves a half-written file for ``--resume``."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=2))
    os.replace(tmp, path)


def another_trial(settings: RandomSettings, rows: list[dict[str, Any]]) -> bool:
    """Whether to train one more candidate: ``trials`` of them, or with a time budget while the expected total
    after one more (the mean candidate's device seconds added) lies nearer the budget than the total now."""
    if settings.time_budget_s is None:
        return len(rows) < settings.trials
    if not rows:
        return True
    spent = sum(row["device_s"] for row in rows)
    mean = spent / len(rows)
    return spent + mean / 2 < settings.time_budget_s


def _load_trials(path: Path, resume: bool) -> list[dict[str, Any]]:
    if not resume or not path.is_file():
        return []
    return json.loads(path.read_text())


class RandomSearch:
    """Random search of the ``dints`` space; registered as ``random``."""

    name = "random"
    space = "dints"
    budgets = tuple(PRESETS)

    def settings(self, budget: str, overrides: Mapping[str, Any]) -> RandomSettings:
        return random_settings(budget, overrides)

    def search(self, ctx: SearchContext) -> SearchOutcome:
        from automl_seg.api import Stopwatch, TrainSettings, new_network, train_network

        missing = [method for method, ability in SPACE_ABILITIES.items() if not isinstance(ctx.space, ability)]
        if missing:
            raise PluginError(
                f"random search needs a search space offering {' and '.join(SPACE_METHODS)}; "
                f"space '{ctx.space.name}' lacks {', '.join(missing)} (upgrade the plugin providing it)"
            )
        settings: RandomSettings = ctx.settings  # type: ignore[assignment]
        fit, score = split_training_cases(ctx.data.train_cases, ctx.seed)
        candidates_data = dataclasses.replace(ctx.data, train_cases=fit, val_cases=score)
        train = TrainSettings(
            epochs=settings.epochs, iterations=settings.iterations, batch_size=settings.batch_size,
            optimizer="adamw", lr=settings.lr, weight_decay=1e-5, schedule="cosine",
            val_every=settings.epochs, val_cases=settings.score_cases,
        )  # fmt: skip
        trials_file = ctx.workdir / TRIALS_FILE
        rows = _load_trials(trials_file, ctx.resume)
        rng = random.Random(ctx.seed)
        for done in rows:  # replayed for finished trials: the same rng stream
            draw_within_budget(ctx, settings, rng)
            done.setdefault("device_s", done["train_time_s"])  # trials of a version without time budgets
        while another_trial(settings, rows):
            trial = len(rows)
            clock = Stopwatch(ctx.device)
            arch, memory = draw_within_budget(ctx, settings, rng)
            network = new_network(ctx.space, ctx.space_args, arch, seed=ctx.seed + trial)
            result = train_network(
                network, candidates_data, train, device=ctx.device, seed=ctx.seed + trial,
                workdir=ctx.workdir / f"trial_{trial}", progress=False,
            )  # fmt: skip
            dice = result.last_eval.dice_mean if result.last_eval else 0.0
            row = {
                "trial": trial + 1,
                "score_dice": float(dice),
                "loss": float(result.history[-1]["loss"]),
                "memory_fraction": float(memory["fraction"]),
                "memory_mb": float(memory.get("mb", 0.0)),
                "params": result.params,
                "train_time_s": result.train_time_s,
                "device_s": clock.device_seconds(),
                "arch": arch,
            }
            rows.append(row)
            _save_trials(trials_file, rows)
            log.info(
                "random trial %d%s: Dice %.3f, memory %.3f, %.1f device s", trial + 1,
                "" if settings.time_budget_s else f"/{settings.trials}", dice, row["memory_fraction"], row["device_s"],
            )  # fmt: skip
            ctx.epoch_ended(trial + 1, {k: float(v) for k, v in row.items() if isinstance(v, int | float)})
        best = max(rows, key=lambda r: r["score_dice"])  # max keeps the first of equal scores
        return SearchOutcome(
            arch=best["arch"],
            space_args=dict(ctx.space_args),
            history=rows,
            metrics={
                "search_score_dice": best["score_dice"],
                "search_trials": float(len(rows)),
                "search_trials_device_s": float(sum(row["device_s"] for row in rows)),
            },
            memory=MemoryFigures(
                requested=settings.memory_budget, estimated=best["memory_fraction"], estimated_mb=best["memory_mb"]
            ),
        )
