"""A fake strategy plugin and a fake trial runner: the Optuna side tested without training anything."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import RunInfo, SearchOutcome, TunableParameter
from automl_seg.plugins import PluginHost, load_plugins
from automl_seg.tune.objective import OBSERVER_NAME, TrialOutcome


class FakeSettings(BaseModel):
    alpha: float = 0.5


class FakeStrategy:
    name = "fake"
    space = "fake"

    def settings(self, budget: str, overrides: Mapping[str, Any]) -> BaseModel:
        return FakeSettings(**overrides)

    def search(self, ctx: Any) -> SearchOutcome:
        return SearchOutcome(arch={}, space_args={})


class FakePlugin:
    """Registers strategy ``fake`` and declares two strategy parameters for it."""

    @hookimpl
    def register_search_strategies(self, register: Any) -> None:
        register(FakeStrategy())

    @hookimpl
    def tunable_parameters(self, strategy: str, space: str) -> list[TunableParameter] | None:
        if strategy != "fake":
            return None
        return [
            TunableParameter(name="alpha", target="strategy", kind="float", low=0.0, high=1.0),
            TunableParameter(name="width", target="space", kind="categorical", choices=[8, 16, 32]),
        ]


@pytest.fixture
def host() -> PluginHost:
    return load_plugins(extra=[("fakeplugin", FakePlugin())], use_entry_points=False)


class FakeRunner:
    """Dice peaks at alpha = 0.7; reports ``epochs`` epochs through a real plugin host so the pruning
    observer is exercised the way the engine calls it. ``fail_on`` trial numbers raise; ``nan_on`` give NaN."""

    def __init__(self, epochs: int = 3, fail_on: tuple[int, ...] = (), nan_on: tuple[int, ...] = (),
                 registry: Path | None = None) -> None:  # fmt: skip
        self.epochs = epochs
        self.fail_on = fail_on
        self.nan_on = nan_on
        self.registry = registry
        self.calls: list[dict[str, Any]] = []

    def __call__(self, trial_number: int, values: Mapping[str, Mapping[str, Any]], observer: object) -> TrialOutcome:
        self.calls.append({k: dict(v) for k, v in values.items()})
        run_host = load_plugins(extra=[(OBSERVER_NAME, observer)], use_entry_points=False)
        run = RunInfo(run_id=f"t{trial_number}", kind="tune")
        if trial_number in self.fail_on:
            raise RuntimeError(f"plugin exploded in trial {trial_number}")
        alpha = float(values["strategy"]["alpha"])
        final = 1.0 - (alpha - 0.7) ** 2
        for epoch in range(self.epochs):
            dice = final * (epoch + 1) / self.epochs
            run_host.notify("on_epoch_ended", run=run, phase="train", epoch=epoch, metrics={"val_dice": dice})
        if trial_number in self.nan_on:
            final = math.nan
        memory = 100.0 + 10 * float(values["space"]["width"])
        return TrialOutcome(dice=final, memory_mb=memory, ref=self._register(trial_number, final))

    def _register(self, number: int, dice: float) -> str | None:
        if self.registry is None:
            return None
        from automl_seg_registry import ArchitectureRecord, DatasetRef, Metrics, Registry, SpaceRef, StrategyRef

        record = ArchitectureRecord(
            name="tune-fake", space=SpaceRef(name="fake", version="1"), strategy=StrategyRef(name="fake"),
            dataset=DatasetRef(name="Task99_Synthetic", fingerprint_hash="x"), seed=0,
            metrics=Metrics(dice_mean=dice if math.isfinite(dice) else None), provenance={"trial": number},
        )  # fmt: skip
        with Registry.open(self.registry) as registry:
            return registry.register(record).ref


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    """Four 16^3 synthetic cases (one for validation): the cheapest real engine run for tuning tests."""
    from automl_seg.data.synthetic import make_synthetic_msd

    make_synthetic_msd(tmp_path / "tiny-data", shape=(16, 16, 16), num_cases=4)
    return tmp_path / "tiny-data"
