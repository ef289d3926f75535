"""channels_last_on_cpu: the same network function and gradients, channels-last convolutions, nothing in traces."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from automl_seg.layout import channels_last_on_cpu


@pytest.mark.parametrize("batch", [1, 2])
def test_same_output_and_gradients_in_the_standard_layout(small_unet, assert_same_training, batch: int) -> None:
    """Batch 1 too: there PyTorch's instance norm got a channels-last gradient wrong (see ``_Relayout``)."""
    plain = small_unet()
    fast = channels_last_on_cpu(copy.deepcopy(plain))
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert_same_training(fast, plain, torch.randn(batch, 1, 16, 24, 16))


def test_convolutions_after_norms_get_channels_last_inputs() -> None:
    """Convolutions hand back the standard layout here (standard-layout weights), and so do instance
    norms: each norm's output is switched, so the next convolution (a 1x1x1 one too) gets channels-last."""
    net = channels_last_on_cpu(
        nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.InstanceNorm3d(4), nn.ReLU(), nn.Conv3d(4, 3, 1))
    )
    layouts: list[bool] = []
    for module in net.modules():
        if isinstance(module, nn.Conv3d):
            module.register_forward_pre_hook(
                lambda _m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last_3d))
            )
    net(torch.randn(1, 1, 8, 12, 8))
    assert layouts == [True, True]


def test_traces_and_other_ranks_are_left_alone(small_unet) -> None:
    traced = torch.jit.trace(
        channels_last_on_cpu(small_unet()).eval(), torch.randn(1, 1, 16, 24, 16), check_trace=False
    )
    assert "aten::contiguous" not in str(traced.inlined_graph)
    flat = channels_last_on_cpu(nn.Sequential(nn.Conv2d(1, 2, 3), nn.InstanceNorm2d(2)))
    assert flat(torch.randn(1, 1, 8, 8)).shape == (1, 2, 6, 6)  # 2D: nothing to switch


def test_metatensor_inputs_train_through_in_place_activations(small_unet) -> None:
    """The DynUNet's in-place LeakyReLUs follow the switched norm outputs; MONAI's MetaTensor batches too."""
    from monai.data import MetaTensor

    net = channels_last_on_cpu(small_unet())
    for batch in (1, 2):
        net(MetaTensor(torch.randn(batch, 1, 16, 24, 16))).square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
