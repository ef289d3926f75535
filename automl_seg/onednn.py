"""oneDNN for batch-1 3D convolutions on the CPU: same function, same state dict, faster inference.

PyTorch's heuristic (``use_mkldnn`` in ATen's ``Convolution.cpp``) sends a float32 3D convolution
whose batch is 1, whose kernel is no larger than 3 and whose N*C*D*H is at most 20480 to its native
im2col kernel, which runs it several times slower than oneDNN does (a batch of 4 of the same
already goes to oneDNN). A batch of 1 is what sliding-window inference runs when a
volume fits in one window (``predict``, ``evaluate``, the export parity check) and in the last,
partial batch of windows. Those convolutions call oneDNN directly; 1x1x1 kernels keep PyTorch's
choice (its native kernel is the faster one there), as do traced and exported graphs
(``automl_seg.layout.exporting``: ONNX has no oneDNN operator).
"""

from __future__ import annotations

import torch
from torch import nn

from automl_seg.layout import exporting


def _takes_the_slow_path(conv: nn.Conv3d, x: torch.Tensor) -> bool:
    return (
        not exporting()
        and x.shape[0] == 1
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and max(conv.kernel_size) > 1
        and torch.backends.mkldnn.is_available()
        and bool(torch.backends.mkldnn.enabled)  # a bool at run time; typed as the ContextProp that sets it
    )


class OneDnnConv3d(nn.Conv3d):
    """``nn.Conv3d`` whose batch-1 CPU convolutions run on oneDNN (see the module docstring)."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if _takes_the_slow_path(self, input):
            return torch.ops.aten.mkldnn_convolution(
                input, weight, bias, list(self.padding), list(self.stride), list(self.dilation), self.groups
            )
        return super()._conv_forward(input, weight, bias)


def onednn_conv3d(model: nn.Module) -> nn.Module:
    """Swap every ``nn.Conv3d`` in ``model`` for a ``OneDnnConv3d`` holding the same parameters (names and
    state dict unchanged); returns ``model``. Swap before an optimizer is built: it keeps the parameter
    objects, but not hooks registered on the old convolution modules."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv3d:
                swapped = OneDnnConv3d(
                    child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,  # type: ignore[arg-type]
                    padding=child.padding, dilation=child.dilation, groups=child.groups,  # type: ignore[arg-type]
                    bias=child.bias is not None, padding_mode=child.padding_mode, device="meta",
                )  # fmt: skip
                swapped.weight, swapped.bias = child.weight, child.bias
                swapped.train(child.training)
                setattr(parent, name, swapped)
    return model
