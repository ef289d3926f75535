"""The discrete network's speed-ups: same function and gradients as MONAI's DiNTS, stems channels-last, clean traces."""

from __future__ import annotations

import pytest
import torch
from automl_seg_dints.space import DintsSpace
from automl_seg_dints.topology import Topology, decode
from torch import nn

ARGS = {"in_channels": 1, "num_classes": 3, "num_blocks": 3, "num_depths": 2, "channel_mul": 0.125}


def _network() -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    topology = Topology(2)
    payload = decode(topology, torch.rand(3, topology.num_paths), torch.randn(3, topology.num_paths, 5)).to_payload()
    return DintsSpace().build_network(ARGS, payload), payload


@pytest.mark.parametrize("batch", [1, 2])
def test_discrete_network_trains_like_monai(monai_discrete_network, assert_same_training, batch: int) -> None:
    ours, payload = _network()
    reference = monai_discrete_network(ARGS, payload)
    reference.load_state_dict(ours.state_dict(), strict=True)
    # outputs to 1e-4: the separable resize differs from torch's kernel (see test_dints_space)
    assert_same_training(ours, reference, torch.randn(batch, 1, 16, 24, 16), output_atol=1e-4)


def test_every_full_resolution_stem_convolution_runs_channels_last() -> None:
    ours, _ = _network()
    layouts: dict[str, bool] = {}
    for name, module in ours.named_modules():
        if isinstance(module, nn.Conv3d) and name.startswith(("stem_down.0.", "stem_finals.")):
            module.register_forward_pre_hook(
                lambda _m, args, name=name: layouts.__setitem__(
                    name, args[0].is_contiguous(memory_format=torch.channels_last_3d)
                )
            )
    ours(torch.randn(1, 1, 16, 24, 16))
    assert len(layouts) == 4 and all(layouts.values()), layouts  # 2 stem-down and 2 final convolutions
    assert not any(isinstance(m, nn.Upsample) for m in ours.stem_down["0"].modules())  # the x1 resize is gone


def test_traced_network_leaves_the_layout_hooks_out() -> None:
    ours, _ = _network()
    traced = torch.jit.trace(ours.eval(), torch.randn(1, 1, 16, 24, 16), check_trace=False)
    assert "aten::contiguous" not in str(traced.inlined_graph)
