"""Channels-last on the CPU for 3D networks: same function, same state dict, faster training.

oneDNN's 3D convolutions with few channels run faster forward and backward in the channels-last
layout, and a 1x1x1 convolution fed the standard layout takes a slow path. PyTorch carries the
layout from one convolution to the next, but instance norms hand back the standard layout, so this
switches their outputs back as well. Training gains (``benchmarks/bench_fixed.py`` measures the
``fixed`` space's DynUNet against plain MONAI); inference (batch 1, no gradients) gains little
either way. On other devices, and in traced or exported graphs, the hooks do nothing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase


def exporting() -> bool:
    """Whether ``torch`` is tracing, exporting or compiling the running code: eager-only speed-ups step
    aside then (the artefact is for any device, and ONNX has no memory formats)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


class _Relayout(torch.autograd.Function):
    """``x`` copied into ``layout``; its gradient goes back in ``x``'s own layout.

    Plain ``contiguous(memory_format=...)`` hands the gradient back in the new layout, and PyTorch's
    instance norm (torch 2.13, CPU) computes wrong gradients from a channels-last gradient when its
    input is in the standard layout and the batch is 1 (its backward reads one layout as the other;
    batches of 2 or more copy first and come out right)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
        ctx.layout = _layout_of(x)  # type: ignore[attr-defined]
        return x.contiguous(memory_format=layout)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        layout = ctx.layout  # type: ignore[attr-defined]
        return (grad if layout is None else grad.contiguous(memory_format=layout)), None


def _layout_of(x: torch.Tensor) -> torch.memory_format | None:
    """Standard or channels-last; None for other strides (a view), whose gradient is left as it comes."""
    if x.is_contiguous():
        return torch.contiguous_format
    return torch.channels_last_3d if x.is_contiguous(memory_format=torch.channels_last_3d) else None


def _relayout(x: object, layout: torch.memory_format) -> torch.Tensor | None:
    """``x`` in ``layout``, or None (keep ``x``) when it needs no switch: not a 5D CPU tensor, in a traced
    or exported graph, or already in that layout (a switch would hand back ``x`` itself, and an
    in-place activation after it would then modify the function's input)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.device.type != "cpu" or exporting():
        return None
    if x.is_contiguous(memory_format=layout):
        return None
    # a tensor subclass (MONAI's MetaTensor) would wrap the function's output as a view of its input
    return _Relayout.apply(x.as_subclass(torch.Tensor), layout)


def _input_channels_last(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
    x = _relayout(args[0], torch.channels_last_3d)
    return None if x is None else (x, *args[1:])


def _output_channels_last(_module: nn.Module, _args: tuple[torch.Tensor, ...], y: object) -> torch.Tensor | None:
    return _relayout(y, torch.channels_last_3d)


def _output_contiguous(_module: nn.Module, _args: tuple[torch.Tensor, ...], y: object) -> torch.Tensor | None:
    return _relayout(y, torch.contiguous_format)


def channels_last_on_cpu(module: nn.Module) -> nn.Module:
    """Run ``module`` in the channels-last layout on the CPU; its input and output keep theirs.

    Norm outputs switch back to channels-last right away, before the activation that follows, so
    that autograd keeps one copy of each. Hooks keep parameter names and the state dict unchanged;
    traced and exported graphs (ONNX, TorchScript) leave them out."""
    module.register_forward_pre_hook(_input_channels_last)
    for norm in module.modules():
        if isinstance(norm, _NormBase):
            norm.register_forward_hook(_output_channels_last)
    module.register_forward_hook(_output_contiguous)
    return module
