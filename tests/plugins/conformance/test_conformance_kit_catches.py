"""The kit's checks fail on objects that break what the engine relies on (each check can fail)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import BaseModel
from torch import nn

from automl_seg.interfaces import MemoryFigures, SearchOutcome
from automl_seg.testing import ContractViolation, checks
from automl_seg.testing.exporters import tiny_network
from automl_seg.testing.fixtures import tiny_plan

PLAN = tiny_plan()


class TupleArgsSpace:
    name, version = "tuples", "1"

    def default_args(self, plan, budget) -> dict[str, Any]:
        return {"channels": (4, 8)}  # a tuple comes back from JSON as a list

    def build_network(self, args, arch) -> nn.Module:
        return nn.Conv3d(1, 3, 1)


class DriftingSpace(TupleArgsSpace):
    """Rebuilding from the same record gives another network: stored weights would not load."""

    def default_args(self, plan, budget) -> dict[str, Any]:
        return {}

    def build_network(self, args, arch) -> nn.Module:
        return nn.Conv3d(1, 3, random.choice([1, 3]), padding="same")


class LaxSettings(BaseModel):
    pass  # pydantic's default ignores unknown keys


class LaxStrategy:
    name, space = "lax", "fixed"

    def settings(self, budget, overrides):
        return LaxSettings(**overrides)

    def search(self, ctx):
        return SearchOutcome(arch={}, space_args={})


class NoisyPredictor:
    providers = ["CPUExecutionProvider"]

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(x)).numpy() + 0.1


class NoisyExporter:
    name, suffix = "noisy", ".pt"

    def export(self, model, example, path: Path, options) -> dict[str, Any]:
        torch.save(model.state_dict(), path)
        self.model = model
        return {}

    def load(self, path, providers=None) -> NoisyPredictor:
        return NoisyPredictor(self.model)


def test_args_that_change_through_json_are_caught():
    with pytest.raises(ContractViolation, match="changes through JSON"):
        checks.check_space_args(TupleArgsSpace(), PLAN, "quick")


def test_a_network_that_rebuilds_differently_is_caught():
    random.seed(0)
    space = DriftingSpace()
    with pytest.raises(ContractViolation, match="different parameters or shapes"):
        for _ in range(20):  # sooner or later the two builds differ
            net = checks.check_space_network(space, {}, {}, PLAN)
            checks.check_space_rebuild(space, net, {}, {}, PLAN)


def test_wrong_number_of_output_classes_is_caught():
    with pytest.raises(ContractViolation, match=r"output shape \(2, 3, 16, 16, 16\) != labels' \(2, 4"):
        checks.check_space_network(TupleArgsSpace(), {}, {}, tiny_plan(num_classes=4))


def test_settings_accepting_unknown_keys_are_caught():
    with pytest.raises(ContractViolation, match="accepted the unknown key"):
        checks.check_strategy_settings(LaxStrategy())


def test_unseeded_search_and_overlong_epoch_reports_are_caught():
    with pytest.raises(ContractViolation, match="different architectures"):
        checks.check_same_arch(
            SearchOutcome(arch={"a": 1}, space_args={}), SearchOutcome(arch={"a": 2}, space_args={}), 0
        )
    recorder = checks.EpochRecorder()
    for epoch in (1, 2, 3):
        recorder(epoch, {"loss": 1.0})
    with pytest.raises(ContractViolation, match="3 epochs reported but settings.epochs is 2"):
        checks.check_epoch_reports(recorder, type("S", (BaseModel,), {"__annotations__": {"epochs": int}})(epochs=2))


def test_memory_over_a_hard_budget_is_caught():
    outcome = SearchOutcome(arch={}, space_args={}, memory=MemoryFigures(requested=0.5, estimated=0.7))
    with pytest.raises(ContractViolation, match="exceeds the requested"):
        checks.check_memory_budget(outcome)
    with pytest.raises(ContractViolation, match="needs SearchOutcome.memory.requested"):
        checks.check_memory_budget(SearchOutcome(arch={}, space_args={}))


def test_api_one_memory_keys_move_to_the_typed_figures():
    outcome = SearchOutcome(arch={}, space_args={}, metrics={"memory_requested": 0.5, "memory_estimated": 0.7, "x": 1})
    assert outcome.memory == MemoryFigures(requested=0.5, estimated=0.7) and outcome.metrics == {"x": 1}


def test_strategy_that_reports_no_epoch_is_caught():
    settings = type("S", (BaseModel,), {"__annotations__": {"epochs": int}})(epochs=2)
    with pytest.raises(ContractViolation, match="reported no epoch"):
        checks.check_epoch_reports(checks.EpochRecorder(), settings)
    checks.check_epoch_reports(checks.EpochRecorder(), settings, require_any=False)


def test_outcome_with_missing_artifact_is_caught(tmp_path: Path):
    outcome = SearchOutcome(arch={}, space_args={}, artifacts={"plot": tmp_path / "missing.png"})
    with pytest.raises(ContractViolation, match="missing file"):
        checks.check_outcome(outcome)


def test_artefact_that_computes_something_else_is_caught(tmp_path: Path):
    example = torch.randn(1, 1, 16, 16, 16)
    with pytest.raises(ContractViolation, match="logits differ from torch by 1.00e-01"):
        checks.check_export_roundtrip(NoisyExporter(), tiny_network(), example, tmp_path)


def test_a_setting_given_as_a_class_attribute_is_refused_with_the_fixture_form():
    from automl_seg.testing import ExporterContract, SearchSpaceContract, SearchStrategyContract

    with pytest.raises(TypeError, match=r"patch_size is a fixture .* `@pytest.fixture def patch_size\(self\)"):

        class OldStyleStrategyTests(SearchStrategyContract):
            patch_size = (32, 32, 32)

    with pytest.raises(TypeError, match=r"OldStyleExporterTests.atol = 0.01: atol is a fixture"):

        class OldStyleExporterTests(ExporterContract):
            atol = 0.01

    class FixtureStyleSpaceTests(SearchSpaceContract):  # the fixture form, and names of one's own, are fine
        note = "mine"

        @pytest.fixture
        def budget(self):
            return "full"


class _StackedAlways(nn.Module):
    """Deeply supervised in training mode, and (wrongly) in eval mode too."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return torch.stack([out, out * 0.5], dim=1)


class StackedSpace(TupleArgsSpace):
    def build_network(self, args, arch) -> nn.Module:
        return _StackedAlways()


class _Pair(nn.Conv3d):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        out = super().forward(x)
        return out, out


class PairSpace(TupleArgsSpace):
    def build_network(self, args, arch) -> nn.Module:
        return _Pair(1, 3, 1)


def test_deep_supervision_must_end_in_eval_mode():
    with pytest.raises(ContractViolation, match=r"labels' shape \(2, 3, 16, 16, 16\) in eval mode"):
        checks.check_space_network(StackedSpace(), {}, {}, PLAN)


def test_outputs_as_a_tuple_are_caught():
    with pytest.raises(ContractViolation, match="returns tuple, not a tensor"):
        checks.check_space_network(PairSpace(), {}, {}, PLAN)
