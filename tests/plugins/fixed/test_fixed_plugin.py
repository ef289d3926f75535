"""The fixed baseline plugin: a DynUNet configured from the plan, and a strategy that returns it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from automl_seg_fixed.space import plan_topology

from automl_seg.data.models import Plan
from automl_seg.engine.settings import PLAN_LIMITS
from automl_seg.errors import ConfigError
from automl_seg.interfaces import RunInfo, SearchContext, SearchOutcome
from automl_seg.plugins import load_plugins
from automl_seg.testing.checks import saved_for_backward_mb


def _plan(patch: tuple[int, int, int], spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Plan:
    return Plan(
        dataset="Task99_Synthetic", modality="MRI", in_channels=1, num_classes=3,
        labels={0: "background", 1: "a", 2: "b"}, spacing=spacing, patch_size=patch,
    )  # fmt: skip


def test_plugin_registers_space_and_strategy() -> None:
    host = load_plugins()
    assert host.space("fixed").name == "fixed"
    assert host.strategy("fixed").space == "fixed"
    assert not [p for p in host.problems if "fixed" in p]


def test_topology_follows_patch_and_spacing() -> None:
    kernels, strides = plan_topology((48, 64, 48), (1.0, 1.0, 1.0), max_levels=4)
    assert strides[0] == [1, 1, 1] and len(kernels) == len(strides) == 5
    assert strides[-1] == [1, 2, 1]  # 48 -> 6 stops at 4 voxels on the short axes
    kernels, strides = plan_topology((160, 160, 32), (0.8, 0.8, 3.0), max_levels=4)
    assert kernels[0] == [3, 3, 1]  # the coarse axis gets an in-plane kernel first
    assert strides[1] == [2, 2, 1]  # and is not downsampled until it has caught up


@pytest.mark.parametrize("patch", [(16, 16, 16), (32, 48, 32)])
def test_network_maps_patch_to_class_logits(patch: tuple[int, int, int]) -> None:
    space = load_plugins().space("fixed")
    args = space.default_args(_plan(patch), "quick")
    network = space.build_network(args, {}).eval()
    with torch.no_grad():
        out = network(torch.zeros(1, 1, *patch))
    assert out.shape == (1, 3, *patch)
    assert args["filters"][0] == 8 and space.default_args(_plan(patch), "full")["filters"][0] == 32


def test_strategy_returns_the_fixed_architecture(tmp_path: Path) -> None:
    outcome = _search({}, (16, 16, 16), "quick", tmp_path)
    assert outcome.arch == {} and outcome.space_args == load_plugins().space("fixed").default_args(
        _plan((16, 16, 16)), "quick"
    )


def test_strategy_rejects_unknown_settings() -> None:
    with pytest.raises(ConfigError, match="epochs: unknown setting"):
        load_plugins().strategy("fixed").settings("quick", {"epochs": 3})


@pytest.mark.parametrize(("patch", "heads"), [((64, 32, 32), 2), ((32, 32, 32), 2), ((16, 16, 16), 1)])
def test_deep_supervision_heads_fit_the_decoder(patch: tuple[int, int, int], heads: int) -> None:
    space = load_plugins().space("fixed")
    args = space.default_args(_plan(patch), "full")
    assert args["deep_supervision"] == heads  # at most the levels below the top of the decoder
    network = space.build_network(args, {})
    x = torch.randn(2, 1, *patch)
    out = network.train()(x)
    assert out.shape == ((2, 1 + heads, 3, *patch) if heads else (2, 3, *patch))
    with torch.no_grad():
        assert network.eval()(x).shape == (2, 3, *patch)  # inference and exports see the main output only


def test_records_without_deep_supervision_rebuild_the_plain_network() -> None:
    space = load_plugins().space("fixed")
    args = space.default_args(_plan((32, 32, 32)), "full")
    old = {k: v for k, v in args.items() if k != "deep_supervision"}  # a record made before the heads existed
    keys = set(space.build_network(old, {}).state_dict())
    assert not any("deep_supervision" in k for k in keys)
    assert keys < set(space.build_network(args, {}).state_dict())
    config = space.monai_network_config(args, {})
    assert config["deep_supervision"] is True and config["deep_supr_num"] == 2


def _search(settings: dict[str, int], patch: tuple[int, int, int], budget: str, tmp_path: Path) -> SearchOutcome:
    host = load_plugins()
    strategy, space = host.strategy("fixed"), host.space("fixed")
    ctx = SearchContext(
        space=space, space_args=space.default_args(_plan(patch), budget), data=None,  # type: ignore[arg-type]
        settings=strategy.settings(budget, settings), seed=0, device=torch.device("cpu"), workdir=tmp_path,
        resume=False, run=RunInfo(run_id="t", kind="search"),
    )  # fmt: skip
    return strategy.search(ctx)


def test_cpu_budgets_train_without_heads_unless_asked(tmp_path: Path) -> None:
    assert _search({}, (32, 32, 32), "quick", tmp_path).space_args["deep_supervision"] == 0
    assert _search({}, (32, 32, 32), "standard", tmp_path).space_args["deep_supervision"] == 0
    assert _search({"deep_supervision": 2}, (32, 32, 32), "quick", tmp_path).space_args["deep_supervision"] == 2
    assert _search({"deep_supervision": 0}, (32, 32, 32), "full", tmp_path).space_args["deep_supervision"] == 0


def test_more_heads_than_decoder_levels_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="deep_supervision=3: .* use at most 1"):
        _search({"deep_supervision": 3}, (16, 16, 16), "quick", tmp_path)


@pytest.mark.parametrize(
    "budget", [budget for budget, limits in PLAN_LIMITS.items() if limits.memory_kb_per_voxel is not None]
)
def test_network_keeps_within_the_budget_s_memory_rate(budget: str) -> None:
    """The engine plans a budget's patches by the memory its networks keep per voxel; the fixed
    DynUNet of that budget keeps no more (deep supervision heads included)."""
    patch = (32, 32, 32)
    space = load_plugins().space("fixed")
    args = {**space.default_args(_plan(patch), budget), "deep_supervision": 2}
    network = space.build_network(args, {}).train()
    kept_kb = saved_for_backward_mb(network, torch.randn(1, 1, *patch)) * 1024
    assert kept_kb / (32**3) <= PLAN_LIMITS[budget].memory_kb_per_voxel
