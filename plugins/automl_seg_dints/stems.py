"""Faster stems for MONAI's ``DiNTS`` on the CPU, same function and same state dict.

Both networks the plugin builds (the search's supernet and the discrete network it retrains,
exports and predicts with) are MONAI's ``DiNTS`` around a search space; its full-resolution stems
are where a CPU spends time it need not:

- oneDNN's 3D convolutions with few channels are about 2x faster forward and backward in the
  channels-last layout; the deeper, wider cells are not, so only the stems switch.
- The finest stem's trilinear "resize" by a factor of 1 is an exact identity (``align_corners=True``
  samples the grid points themselves) but costs a full-resolution interpolation each way.

Measured on a 2-core CPU, batch 4 of 48x64x48, the quick preset (``num_blocks=4``, ``num_depths=3``,
``channel_mul=0.25``): a training step of a discrete network 636 -> 452 ms (fastest of 8); a
1-patch inference 96 -> 92 ms.
"""

from __future__ import annotations

import torch
from monai.networks.nets import DiNTS
from torch import nn
from torch.nn.modules.batchnorm import _NormBase


def _exporting() -> bool:
    """Traced or exported: the artefact is for any device, and ONNX has no memory formats."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def _channels_last(x: torch.Tensor) -> torch.Tensor | None:
    if x.device.type != "cpu" or _exporting():
        return None
    return x.contiguous(memory_format=torch.channels_last_3d)


def _input_channels_last(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
    x = _channels_last(args[0])
    return None if x is None else (x, *args[1:])


def _output_channels_last(_module: nn.Module, _args: tuple[torch.Tensor, ...], y: torch.Tensor) -> torch.Tensor | None:
    return _channels_last(y)


def _output_contiguous(_module: nn.Module, _args: tuple[torch.Tensor, ...], y: torch.Tensor) -> torch.Tensor | None:
    return None if _exporting() else y.contiguous()


def channels_last_on_cpu(module: nn.Module) -> nn.Module:
    """Run ``module`` in the channels-last layout on the CPU; its input and output keep theirs.

    Instance norms hand back the standard layout, so their outputs switch back too (before the
    activation that follows, so that autograd keeps one copy): a convolution fed a standard-layout
    tensor is slow there, worst the output 1x1x1 one (8 to 3 channels, batch 4 of 48x64x48: 37 ms
    forward and 125 ms forward + backward, against 1.3 and 7 ms channels-last). Hooks keep parameter
    names and the state dict unchanged; traced and exported graphs (ONNX, TorchScript) leave the
    hooks out."""
    module.register_forward_pre_hook(_input_channels_last)
    for norm in module.modules():
        if isinstance(norm, _NormBase):
            norm.register_forward_hook(_output_channels_last)
    module.register_forward_hook(_output_contiguous)
    return module


def fast_stems(model: DiNTS) -> DiNTS:
    """``model`` with the identity resize dropped and its full-resolution stems channels-last on the CPU."""
    finest = model.stem_down["0"].mod
    if isinstance(finest[0], nn.Upsample) and finest[0].scale_factor in (1, 1.0) and finest[0].align_corners:
        finest[0] = nn.Identity()
    channels_last_on_cpu(model.stem_down["0"])
    channels_last_on_cpu(model.stem_finals)
    return model
