"""Staged instance norms: the same function as torch's, and onnxruntime computes them to float32 precision."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from automl_seg_export.precise_norm import StagedInstanceNorm, stage_instance_norms
from torch import nn

from automl_seg.interfaces import ExportOptions
from automl_seg.plugins import PluginHost


def smooth_box(channels: int = 2) -> torch.Tensor:
    """What trips onnxruntime's one running sum: spatially correlated values in part of a 48x64x48
    window, zeros around (like the first feature maps of a padded image)."""
    generator = torch.Generator().manual_seed(0)
    smooth = F.avg_pool3d(torch.randn(1, channels, 48, 64, 48, generator=generator), 5, 1, 2) * 5
    x = torch.zeros_like(smooth)
    x[..., 6:42, 7:57, 6:41] = smooth[..., 6:42, 7:57, 6:41]
    return x


def onnxruntime_output(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (x,), buffer, dynamo=False, opset_version=17, input_names=["x"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]


@pytest.mark.parametrize("shape", [(2, 3, 5, 6, 7), (2, 3, 6, 7), (2, 3, 9)])
@pytest.mark.parametrize("affine", [True, False])
def test_staged_norm_is_torchs_instance_norm(shape: tuple[int, ...], affine: bool) -> None:
    torch.manual_seed(0)
    norm = {5: nn.InstanceNorm3d, 4: nn.InstanceNorm2d, 3: nn.InstanceNorm1d}[len(shape)](3, affine=affine)
    if affine:
        nn.init.normal_(norm.weight)
        nn.init.normal_(norm.bias)
    x = torch.randn(shape, dtype=torch.float64) * 3 + 2
    staged = StagedInstanceNorm(norm.double())
    torch.testing.assert_close(staged(x), norm(x), rtol=0, atol=1e-12)
    if affine:
        assert staged.weight is norm.weight  # the same parameters, not copies


def test_onnxruntime_computes_the_staged_norm_to_float32_precision() -> None:
    x = smooth_box()
    exact = F.instance_norm(x.double(), eps=1e-5).numpy()
    fused = np.abs(onnxruntime_output(nn.InstanceNorm3d(2), x) - exact).max()
    staged = np.abs(onnxruntime_output(StagedInstanceNorm(nn.InstanceNorm3d(2)), x) - exact).max()
    assert staged < 2e-5, f"staged {staged:.1e} (onnxruntime's own InstanceNormalization: {fused:.1e})"
    # why staging exists; if onnxruntime's own op becomes precise, drop the staging
    assert fused > 10 * staged, f"onnxruntime's InstanceNormalization is now precise ({fused:.1e})"


def test_only_large_norms_without_running_statistics_are_staged() -> None:
    net = nn.Sequential(
        nn.Conv3d(1, 4, 1), nn.InstanceNorm3d(4, affine=True), nn.Sequential(nn.InstanceNorm3d(4)),
        nn.InstanceNorm3d(4, track_running_stats=True), nn.BatchNorm3d(4),
        nn.AvgPool3d(2), nn.InstanceNorm3d(4),  # 20^3 voxels: a short sum, left fused
    ).eval()  # fmt: skip
    x = torch.randn(1, 1, 40, 40, 40)
    before = net(x)
    assert stage_instance_norms(net, x) == 2
    kinds = [type(m).__name__ for m in net.modules()]
    assert kinds.count("StagedInstanceNorm") == 2 and kinds.count("InstanceNorm3d") == 2
    torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-5)
    assert not any(m._forward_hooks for m in net.modules())  # the size probes are gone


@pytest.mark.parametrize("fp16", [False, True])
def test_float32_onnx_exports_carry_staged_norms(
    host: PluginHost, dynunet: nn.Module, tmp_path: Path, fp16: bool
) -> None:
    """float32 graphs stage the full-resolution norms (32x32x48 example: 49152 voxels); float16 ones
    keep onnxruntime's fused op everywhere. onnxruntime loads either (the untrained net's equal norm
    parameters once made it refuse the graph) and computes torch's logits. The caller's network is
    left as it was."""
    path = tmp_path / "net.onnx"
    exporter = host.exporter("onnx")
    exporter.export(dynunet, torch.zeros(1, 1, 32, 32, 48), path, ExportOptions(fp16=fp16))
    x = torch.randn(1, 1, 32, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = dynunet(x)
    got = exporter.load(path, ["CPUExecutionProvider"])(x)
    assert (got - expected).abs().max() < (5e-2 if fp16 else 1e-4)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    norms = sum(isinstance(m, nn.InstanceNorm3d) for m in dynunet.modules())
    staged = norms - ops.count("InstanceNormalization")
    assert staged == 0 if fp16 else 0 < staged < norms
    assert not any(isinstance(m, StagedInstanceNorm) for m in dynunet.modules())
