"""The space: arch_code round trip into MONAI's DiNTS, supernet == MONAI's supernet, clear errors."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from automl_seg_dints.space import DintsSpace, DintsSpaceArgs
from automl_seg_dints.supernet import build_supernet
from automl_seg_dints.topology import DecodedArch, Topology, decode

from automl_seg.data.models import Plan
from automl_seg.engine.settings import PLAN_LIMITS
from automl_seg.errors import ConfigError
from automl_seg.testing.checks import saved_for_backward_mb
from automl_seg.testing.fixtures import tiny_plan

ARGS = {"in_channels": 1, "num_classes": 3, "num_blocks": 3, "num_depths": 3, "channel_mul": 0.125}


def _plan(patch: tuple[int, int, int]) -> Plan:
    return tiny_plan(patch)


def _payload(seed: int) -> dict:
    torch.manual_seed(seed)
    topology = Topology(3)
    return decode(topology, torch.rand(3, topology.num_paths), torch.randn(3, topology.num_paths, 5)).to_payload()


def test_arch_code_round_trip_and_same_output_as_monai(monai_discrete_network) -> None:
    payload = json.loads(json.dumps(_payload(0)))  # as stored in a registry record
    assert DecodedArch.from_payload(payload).to_payload() == payload
    ours = DintsSpace().build_network(ARGS, payload).eval()
    monai_net = monai_discrete_network(ARGS, payload).eval()
    monai_net.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        out = ours(x)
        assert out.shape == (1, 3, 32, 32, 32)
        # our separable resize is closer to float64 than torch's trilinear kernel (one 2x resize:
        # 1.3e-6 vs 1.1e-5 off); through the network the two differ by about 5e-5
        torch.testing.assert_close(out, monai_net(x), rtol=1e-4, atol=1e-4)


def test_supernet_computes_monai_supernet() -> None:
    """Our fused supernet and MONAI's TopologySearch: same parameters, same output and gradients."""
    from monai.networks.nets import DiNTS, TopologySearch

    torch.manual_seed(0)
    ours = DintsSpace().build_supernet(ARGS)  # the space's optional hook, which the strategy searches
    with contextlib.redirect_stdout(io.StringIO()):
        reference = DiNTS(TopologySearch(channel_mul=0.125, num_blocks=3, num_depths=3), 1, 3)
    with torch.no_grad():
        ours.dints_space.log_alpha_a.normal_(0, 1)
        ours.dints_space.log_alpha_c.normal_(0, 1)
    reference.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 1, 16, 32, 16)
    a, b = ours(x), reference(x)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    a.square().mean().backward()
    b.square().mean().backward()
    for name in ("log_alpha_a", "log_alpha_c"):
        torch.testing.assert_close(
            getattr(ours.dints_space, name).grad, getattr(reference.dints_space, name).grad, rtol=1e-3, atol=1e-5
        )
    reference_params = dict(reference.named_parameters())
    for name, param in ours.named_parameters():  # every weight too: stems, 1x1, 3x3x3 and pseudo-3D convs
        torch.testing.assert_close(param.grad, reference_params[name].grad, rtol=1e-3, atol=1e-5, msg=name)


def test_default_args_and_patch_errors() -> None:
    space = DintsSpace()
    args = space.default_args(_plan((48, 64, 48)), "full")
    assert args["num_depths"] == 3 and args["num_classes"] == 3  # 48 is not a multiple of 2^(4+1)
    assert space.default_args(_plan((64, 64, 64)), "full")["num_depths"] == 4
    with pytest.raises(ConfigError, match="not divisible by 16"):
        space.default_args(_plan((40, 48, 48)), "quick")


def test_bad_arch_payload_is_a_config_error() -> None:
    payload = _payload(1)
    payload["arch_code_c"] = [[9] * 7] * 3
    with pytest.raises(ConfigError, match="operation indices"):
        DintsSpace().build_network(ARGS, payload)
    with pytest.raises(ConfigError, match="shape"):
        DintsSpace().build_network({**ARGS, "num_blocks": 4}, _payload(1))


def test_sample_arch_is_seeded_valid_and_estimated():
    import random

    from automl_seg_dints.space import DintsSpace

    space = DintsSpace()
    plan = _plan((32, 32, 32)).model_copy(update={"batch_size": 2})
    args = space.default_args(plan, "quick")
    first = space.sample_arch(args, random.Random(7))
    assert first == space.sample_arch(args, random.Random(7))
    assert first != space.sample_arch(args, random.Random(8))
    space.build_network(args, first)  # valid: builds
    memory = space.estimate_memory(args, first, plan)
    assert 0 < memory["fraction"] <= 1 and memory["mb"] > 0


@pytest.mark.parametrize("step", ["weights", "architecture"])
def test_supernet_keeps_at_most_six_tenths_of_monai_activations(step: str) -> None:
    """The memory goal in the benchmark's configuration (``benchmarks/bench_dints.py``, at batch 1),
    counted exactly: the activations autograd keeps for backward in each search step."""
    from monai.networks.nets import DiNTS, TopologySearch

    ours = build_supernet(DintsSpaceArgs(**{**ARGS, "num_blocks": 4, "channel_mul": 0.25}))
    with contextlib.redirect_stdout(io.StringIO()):
        reference = DiNTS(TopologySearch(channel_mul=0.25, num_blocks=4, num_depths=3), 1, 3)
    x = torch.randn(1, 1, 48, 64, 48)
    kept = {}
    for name, model in (("ours", ours), ("monai", reference)):
        for param_name, param in model.named_parameters():
            param.requires_grad_(("log_alpha" in param_name) == (step == "architecture"))
        kept[name] = saved_for_backward_mb(model, x)
    assert kept["ours"] <= 0.6 * kept["monai"], kept


@pytest.mark.parametrize(
    "budget", [budget for budget, limits in PLAN_LIMITS.items() if limits.memory_kb_per_voxel is not None]
)
def test_densest_architecture_keeps_within_the_budget_s_memory_rate(budget: str) -> None:
    """The engine plans a budget's patches by the memory its networks keep per voxel; the densest
    retrainable DiNTS architecture of that budget (every path, each operation in turn) keeps no more."""
    from automl_seg_dints.args import parse_space_args
    from automl_seg_dints.topology import OPS

    patch = (32, 32, 32)
    space = DintsSpace()
    args = space.default_args(_plan(patch), budget)
    space_args = parse_space_args(args)
    topology = Topology(space_args.num_depths)
    every_path = torch.ones(space_args.num_blocks, topology.num_paths)
    worst = 0.0
    for op in range(len(OPS)):
        op_logits = torch.nn.functional.one_hot(torch.full(every_path.shape, op), len(OPS)).float()
        network = space.build_network(args, decode(topology, every_path, op_logits).to_payload()).train()
        worst = max(worst, saved_for_backward_mb(network, torch.randn(1, 1, *patch)) * 1024 / 32**3)
    assert worst <= PLAN_LIMITS[budget].memory_kb_per_voxel
