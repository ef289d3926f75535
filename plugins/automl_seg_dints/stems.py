"""Faster stems for MONAI's ``DiNTS`` on the CPU, same function and same state dict.

Both networks the plugin builds (the search's supernet and the discrete network it retrains,
exports and predicts with) are MONAI's ``DiNTS`` around a search space; its full-resolution stems
are where a CPU spends time it need not:

- The full-resolution stems run channels-last (``automl_seg.layout``); switching the cells too
  gains nothing measurable in training and costs inference a little.
- The finest stem's trilinear "resize" by a factor of 1 is an exact identity (``align_corners=True``
  samples the grid points themselves) but costs a full-resolution interpolation each way.

``benchmarks/bench_dints.py`` measures the discrete network's training step and inference against
plain MONAI.
"""

from __future__ import annotations

from typing import cast

from monai.networks.nets import DiNTS
from torch import nn

from automl_seg.api import channels_last_on_cpu


def fast_stems(model: DiNTS) -> DiNTS:
    """``model`` with the identity resize dropped and its full-resolution stems channels-last on the CPU."""
    finest = cast(nn.Sequential, model.stem_down["0"].mod)  # MONAI's StemTS: its layers, untyped
    first = finest[0]
    if isinstance(first, nn.Upsample) and first.scale_factor == 1 and first.align_corners:
        finest[0] = nn.Identity()
    channels_last_on_cpu(model.stem_down["0"])
    channels_last_on_cpu(model.stem_finals)
    return model
