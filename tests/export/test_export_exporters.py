"""The ONNX and TorchScript exporters on plain MONAI networks: files, checker, dynamic shapes, providers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from automl_seg.errors import ConfigError
from automl_seg.interfaces import Exporter, ExportOptions
from automl_seg.plugins import PluginHost

OPTIONS = ExportOptions(spatial_multiple=16)
#: two spatial sizes (multiples of 16) and batch 2 that the 16^3 example never saw
SHAPES = [(2, 1, 16, 16, 16), (1, 1, 32, 16, 48)]


def run_torch(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_both_exporters_registered_by_the_plugin(host: PluginHost) -> None:
    assert {"onnx", "torchscript"} <= set(host.registered["exporter"])
    assert all(isinstance(host.exporter(n), Exporter) for n in ("onnx", "torchscript"))
    assert not [p for p in host.problems if "export" in p]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_torch_at_other_shapes(host: PluginHost, network, fmt: str, tmp_path: Path) -> None:
    name, net = network
    exporter = host.exporter(fmt)
    path = tmp_path / f"{name}{exporter.suffix}"
    facts = exporter.export(net, torch.zeros(1, 1, 16, 16, 16), path, OPTIONS)
    assert path.is_file() and facts["format"] == fmt and facts["compute_dtype"] == "float32"
    if fmt == "onnx":
        onnx.checker.check_model(str(path), full_check=True)
        assert facts["onnx_checker"] == "passed" and facts["opset"] == 17
        assert facts["exporter"] == "torch.onnx (torchscript)"
        assert facts["inputs"][0]["shape"] == ["batch", 1, "depth", "height", "width"]
    predictor = exporter.load(path, ["CPUExecutionProvider"] if fmt == "onnx" else ["cpu"])
    assert predictor.providers == (["CPUExecutionProvider"] if fmt == "onnx" else ["torch:cpu"])
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        out = predictor(x)
        assert isinstance(out, np.ndarray) and out.shape == (shape[0], 3, *shape[2:])
        assert np.abs(out - run_torch(net, x)).max() < 1e-4
    as_tensor = predictor(torch.from_numpy(x))  # the sliding-window calling convention
    assert isinstance(as_tensor, torch.Tensor) and np.abs(as_tensor.numpy() - out).max() == 0


def test_dynamo_exporter_still_works_with_stride_multiples(
    host: PluginHost, dynunet: nn.Module, tmp_path: Path
) -> None:
    """Pins torch's dynamo exporter on the fixed baseline: if torch moves, this fails first."""
    net = dynunet
    exporter = host.exporter("onnx")
    path = tmp_path / "dyn.onnx"
    options = ExportOptions(spatial_multiple=4, onnx_exporter="dynamo", opset=18)
    facts = exporter.export(net, torch.zeros(1, 1, 16, 16, 16), path, options)
    assert facts["exporter"] == "torch.onnx (dynamo)" and facts["opset"] == 18
    assert facts["inputs"][0]["shape"][2] == "4*depth_blocks"
    predictor = exporter.load(path, ["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 12, 20), dtype=np.float32)
    assert np.abs(predictor(x) - run_torch(net, x)).max() < 1e-4


def test_static_export_fixes_spatial_axes(host: PluginHost, dynunet: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "static.onnx"
    facts = host.exporter("onnx").export(
        dynunet, torch.zeros(1, 1, 16, 16, 16), path, ExportOptions(dynamic_spatial=False)
    )
    assert facts["inputs"][0]["shape"] == ["batch", 1, 16, 16, 16] and facts["dynamic_spatial"] is False


def test_fp16_export_keeps_float32_interface(host: PluginHost, dynunet: nn.Module, tmp_path: Path) -> None:
    net = dynunet
    path = tmp_path / "half.onnx"
    facts = host.exporter("onnx").export(net, torch.zeros(1, 1, 16, 16, 16), path, ExportOptions(fp16=True))
    assert facts["compute_dtype"] == "float16"
    assert facts["inputs"][0]["dtype"] == "float32" and facts["outputs"][0]["dtype"] == "float32"
    weights = onnx.load(str(path)).graph.initializer
    assert any(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    x = np.random.default_rng(2).standard_normal((1, 1, 16, 16, 16), dtype=np.float32)
    diff = np.abs(host.exporter("onnx").load(path, ["CPUExecutionProvider"])(x) - run_torch(net, x)).max()
    assert 0 < diff < 5e-2  # really half precision, and still close


@pytest.mark.parametrize("opset", [7, 99])
def test_unsupported_opset_is_a_clear_error(host: PluginHost, dynunet: nn.Module, tmp_path: Path, opset: int) -> None:
    with pytest.raises(ConfigError, match=rf"opset {opset} is not supported .* pass --opset within"):
        host.exporter("onnx").export(dynunet, torch.zeros(1, 1, 16, 16, 16), tmp_path / "x.onnx",
                                     ExportOptions(opset=opset))  # fmt: skip
    assert not (tmp_path / "x.onnx").exists()
