"""onnxruntime provider selection: preferred order, forcing, and reporting what a session really uses."""

from __future__ import annotations

import onnxruntime as ort
import pytest
from automl_seg_export.providers import CPU, GPU_PROVIDERS, PREFERENCE, requested_providers, usable_providers

from automl_seg.errors import ConfigError


def test_preferred_order_is_tensorrt_cuda_cpu() -> None:
    asked = requested_providers()
    assert asked[-1] == CPU
    assert asked == [p for p in PREFERENCE if p in ort.get_available_providers()]


def test_unknown_provider_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError, match=r"NopeExecutionProvider not available; installed: .*CPUExecutionProvider"):
        requested_providers(["NopeExecutionProvider"])


def test_reports_what_the_session_really_uses() -> None:
    used = usable_providers()
    assert CPU in used and set(used) <= set(ort.get_available_providers())


def test_forcing_a_gpu_provider_that_cannot_load_is_an_error() -> None:
    listed_gpu = [p for p in ort.get_available_providers() if p in GPU_PROVIDERS]
    if not listed_gpu or set(usable_providers()) & GPU_PROVIDERS:
        pytest.skip("needs onnxruntime-gpu listing a GPU provider that does not load (a machine without a GPU)")
    with pytest.raises(ConfigError, match=r"fell back to CPUExecutionProvider"):
        usable_providers([listed_gpu[0]])
