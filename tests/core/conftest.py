"""Core fixtures: a small MONAI network (``fake_dist`` lives in tests/conftest.py, shared)."""

from __future__ import annotations

import pytest


@pytest.fixture
def small_unet():
    """``small_unet()``: a seeded small MONAI DynUNet with instance norms (a new one at each call)."""
    import torch
    from monai.networks.nets import DynUNet

    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return DynUNet(3, 1, 3, [3, 3, 3], [1, 2, 2], [2, 2], filters=[4, 8, 16], norm_name="instance")

    return make
