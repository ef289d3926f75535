"""Mixed precision: float16 with a gradient scaler on CUDA, plain float32 on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl_seg.engine import precision
from automl_seg.engine.precision import grad_scaler, mixed_precision, training_dtype

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_float16_on_cuda_only() -> None:
    assert training_dtype(CUDA, True) is torch.float16
    assert training_dtype(CUDA, False) is None
    assert training_dtype(CPU, True) is None and training_dtype(CPU, False) is None


def test_cpu_runs_in_float32_without_scaling() -> None:
    conv = nn.Conv3d(1, 2, 3)
    with mixed_precision(CPU, True):
        out = conv(torch.randn(1, 1, 6, 6, 6))
    assert out.dtype is torch.float32
    assert not grad_scaler(CPU, True).is_enabled()


def float16_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the CPU take CUDA's path (float16 autocast + scaler), to exercise it without a GPU."""
    monkeypatch.setattr(precision, "training_dtype", lambda device, enabled: torch.float16 if enabled else None)


def test_the_float16_path_scales_and_casts(monkeypatch: pytest.MonkeyPatch) -> None:
    float16_here(monkeypatch)
    conv = nn.Conv3d(1, 2, 3)
    with mixed_precision(CPU, True):
        out = conv(torch.randn(1, 1, 6, 6, 6))
    scaler = grad_scaler(CPU, True)
    assert out.dtype is torch.float16 and scaler.is_enabled()
    assert scaler.scale(torch.tensor(1.0)).item() == scaler.get_scale() > 1
    assert not grad_scaler(CPU, False).is_enabled()
