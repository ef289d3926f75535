"""Mixed precision (``amp``): float16 with gradient scaling on CUDA, float32 on the CPU.

Training and the DiNTS search run their forward passes under autocast and compute the loss in
float32 on float32 logits; float16's narrow range underflows small gradients, hence the scaler.

The CPU stays in float32. Measured with torch 2.13 on a CPU with native bfloat16 (AVX512-BF16):
bfloat16 autocast made the quick preset's training steps 1.2-1.3x faster, but oneDNN's bfloat16
weight gradients of 3D convolutions on 2x2x2 feature maps (the coarse levels of a search at small
patches) came out non-finite in some runs, and training diverged.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def training_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype training uses on ``device``, or None for plain float32."""
    return torch.float16 if enabled and device.type == "cuda" else None


def mixed_precision(device: torch.device, enabled: bool) -> AbstractContextManager[object]:
    """Autocast for a forward pass, training or evaluation (compute losses outside it, on ``logits.float()``)."""
    dtype = training_dtype(device, enabled)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A scaler that is active only for float16 training (a no-op otherwise, with the same interface)."""
    return torch.amp.GradScaler(device.type, enabled=training_dtype(device, enabled) == torch.float16)
