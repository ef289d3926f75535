"""The stems' CPU layout: same function and gradients as MONAI's DiNTS, every stem convolution fed channels-last."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from automl_seg_dints.space import DintsSpace
from automl_seg_dints.topology import Topology, decode
from monai.networks.nets import DiNTS, TopologyInstance
from torch import nn

ARGS = {"in_channels": 1, "num_classes": 3, "num_blocks": 3, "num_depths": 2, "channel_mul": 0.125}


def _ours_and_monai() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    topology = Topology(2)
    payload = decode(topology, torch.rand(3, topology.num_paths), torch.randn(3, topology.num_paths, 5)).to_payload()
    ours = DintsSpace().build_network(ARGS, payload)
    with contextlib.redirect_stdout(io.StringIO()):
        instance = TopologyInstance(
            arch_code=[np.array(payload["arch_code_a"]), np.array(payload["arch_code_c"])],
            channel_mul=0.125,
            num_blocks=3,
            num_depths=2,
        )
    monai_net = DiNTS(instance, in_channels=1, num_classes=3, node_a=np.array(payload["node_a"]))
    monai_net.load_state_dict(ours.state_dict(), strict=True)
    return ours, monai_net


def test_fast_stems_train_like_monai() -> None:
    ours, monai_net = _ours_and_monai()
    x = torch.randn(2, 1, 16, 24, 16)
    a, b = ours(x), monai_net(x)
    assert a.is_contiguous()  # the caller gets the standard layout back
    torch.testing.assert_close(a, b)
    a.square().mean().backward()
    b.square().mean().backward()
    reference = dict(monai_net.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, reference[name].grad, rtol=1e-4, atol=1e-6, msg=name)


def test_every_full_resolution_stem_convolution_runs_channels_last() -> None:
    ours, _ = _ours_and_monai()
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
    ours, _ = _ours_and_monai()
    traced = torch.jit.trace(ours.eval(), torch.randn(1, 1, 16, 24, 16), check_trace=False)
    assert "aten::contiguous" not in str(traced.inlined_graph)
