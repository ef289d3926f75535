"""onednn_conv3d: the same function, gradients and state dict; oneDNN for batch-1 CPU convolutions only."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from automl_seg.layout import channels_last_on_cpu
from automl_seg.onednn import OneDnnConv3d, onednn_conv3d


@pytest.mark.parametrize("batch", [1, 2])
def test_same_output_gradients_and_state_dict(small_unet, assert_same_training, batch: int) -> None:
    plain = small_unet()
    fast = onednn_conv3d(copy.deepcopy(plain))
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert any(isinstance(m, OneDnnConv3d) for m in fast.modules())
    assert not any(type(m) is nn.Conv3d for m in fast.modules())
    assert_same_training(fast, plain, torch.randn(batch, 1, 16, 24, 16))


def test_channels_last_networks_keep_their_layout(small_unet, assert_same_training) -> None:
    plain = small_unet()
    fast = onednn_conv3d(channels_last_on_cpu(copy.deepcopy(plain)))
    assert_same_training(fast, plain, torch.randn(1, 1, 16, 24, 16))


def _convolution_kernels(module: nn.Module, x: torch.Tensor) -> set[str]:
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        module(x)
    return {e.key for e in prof.key_averages() if e.key in ("aten::mkldnn_convolution", "aten::slow_conv3d_forward")}


def test_batch_one_runs_on_onednn_and_other_cases_keep_pytorchs_choice() -> None:
    conv = nn.Conv3d(16, 16, 3, padding=1)
    fast = onednn_conv3d(nn.Sequential(copy.deepcopy(conv)))
    x = torch.randn(1, 16, 8, 12, 8)  # N*C*D*H = 1536: PyTorch's heuristic picks its native kernel
    assert _convolution_kernels(conv, x) == {"aten::slow_conv3d_forward"}
    assert _convolution_kernels(fast, x) == {"aten::mkldnn_convolution"}
    pointwise = onednn_conv3d(nn.Sequential(nn.Conv3d(16, 4, 1)))
    assert "aten::mkldnn_convolution" not in _convolution_kernels(pointwise, x)  # native is faster there


def test_traces_keep_the_standard_convolution(small_unet) -> None:
    traced = torch.jit.trace(onednn_conv3d(small_unet()).eval(), torch.randn(1, 1, 16, 24, 16), check_trace=False)
    assert "mkldnn" not in str(traced.inlined_graph)
    assert "aten::_convolution" in str(traced.inlined_graph)
