"""The export pipeline without a registry: parity proof, refusal on mismatch, fp16 rules, sidecar contents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from automl_seg.data.models import Plan
from automl_seg.errors import ConfigError, ExportError
from automl_seg.export import (
    ExportRequest,
    export_network,
    network_stride,
    parity_volumes,
    sha256_file,
    synthetic_volumes,
)
from automl_seg.plugins import PluginHost

MODEL_INFO = {"ref": "unit:1", "weights_sha256": "0" * 64}


class PerturbedExporter:
    """The real ONNX exporter whose loaded artefact is off by ``offset``: a broken export parity must catch."""

    name = "perturbed"
    suffix = ".onnx"

    def __init__(self, real, offset: float) -> None:
        self.real, self.offset = real, offset

    def export(self, model, example, path, options):
        return self.real.export(model, example, path, options)

    def load(self, path, providers=None):
        inner = self.real.load(path, providers)

        class Off:
            providers = inner.providers

            def __call__(_, x):
                if not isinstance(x, np.ndarray):  # the Predictor contract: float32 numpy in (QA: a tensor came)
                    raise TypeError(f"expected np.ndarray (got {type(x).__name__})")
                return inner(x) + self.offset

        return Off()


def run(host: PluginHost, exporter, net: nn.Module, plan: Plan, tmp_path: Path, **request):
    return export_network(
        net, plan, exporter, ExportRequest(**request), tmp_path, "unit",
        model_info=MODEL_INFO, volumes=("synthetic", synthetic_volumes(plan, 2)),
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_parity_and_sidecar(host: PluginHost, dynunet: nn.Module, tiny_plan: Plan, fmt: str, tmp_path: Path) -> None:
    """Both formats on the baseline family here; DiNTS goes through the same path in test_export_registry."""
    net = dynunet
    providers = ["CPUExecutionProvider"] if fmt == "onnx" else ["cpu"]
    artefact, sidecar_file, parity, sidecar = run(host, host.exporter(fmt), net, tiny_plan, tmp_path,
                                                  format=fmt, providers=providers)  # fmt: skip
    assert parity.source == "synthetic" and len(parity.cases) == 2 and parity.enforced
    assert parity.cases[1].shape == [24, 24, 24]  # larger than the patch: several windows were stitched
    assert parity.max_abs_diff < 1e-4 and parity.within_tolerance
    assert parity.min_label_agreement > 0.999 and parity.min_dice > 0.99
    assert json.loads(sidecar_file.read_text()) == sidecar
    assert sidecar_file.name == artefact.name + ".json"
    assert sidecar["artefact"]["sha256"] == sha256_file(artefact)
    assert sidecar["model"] == MODEL_INFO
    assert sidecar["input"]["layout"] == "NCDHW" and sidecar["input"]["dtype"] == "float32"
    assert sidecar["input"]["name"] == ("image" if fmt == "onnx" else "x")
    stride = 4  # measured (product of DynUNet's strides), not the plan's divisor (16)
    assert sidecar["export"]["spatial_multiple"] == stride
    assert f"multiple of {stride} " in sidecar["input"]["spatial_constraint"]
    assert sidecar["input"]["channels"] == [{"index": 0, "modality": "MRI"}]
    assert sidecar["output"]["labels"] == {"0": "background", "1": "anterior", "2": "posterior"}
    assert sidecar["inference"]["patch_size"] == [16, 16, 16] and sidecar["inference"]["overlap"] == 0.25
    assert sidecar["preprocessing"]["spacing_mm"] == [1.0, 1.0, 1.0]
    assert sidecar["preprocessing"]["normalization"] == "zscore"
    assert sidecar["parity"]["max_abs_diff"] == parity.max_abs_diff
    assert sidecar["parity"]["providers"] == (["CPUExecutionProvider"] if fmt == "onnx" else ["torch:cpu"])


def test_perturbed_artefact_fails_parity(host: PluginHost, dynunet: nn.Module, tiny_plan: Plan, tmp_path) -> None:
    broken = PerturbedExporter(host.exporter("onnx"), offset=0.01)
    with pytest.raises(ExportError, match=r"parity check failed: max abs logit difference 0.01 > atol 0.001"):
        run(host, broken, dynunet, tiny_plan, tmp_path)
    assert not list(tmp_path.glob("*.json"))  # no sidecar for a refused export


def test_atol_is_the_users_to_loosen(host: PluginHost, dynunet: nn.Module, tiny_plan: Plan, tmp_path) -> None:
    broken = PerturbedExporter(host.exporter("onnx"), offset=0.01)
    *_, parity, _ = run(host, broken, dynunet, tiny_plan, tmp_path, atol=0.02)
    assert parity.within_tolerance and abs(parity.max_abs_diff - 0.01) < 1e-4  # offset + float noise


def test_fp16_with_only_cpu_is_refused(host: PluginHost, dynunet: nn.Module, tiny_plan: Plan, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"--fp16 needs a GPU runtime \(CUDA or TensorRT\), but only CPU"):
        run(host, host.exporter("onnx"), dynunet, tiny_plan, tmp_path, fp16=True, providers=["CPUExecutionProvider"])


def test_parity_runs_on_validation_volumes_when_data_is_there(synthetic_root: Path, tiny_plan: Plan) -> None:
    source, volumes = parity_volumes(tiny_plan, "Task99_Synthetic", synthetic_root, 1)
    case, image = next(volumes)
    assert source == "validation" and case.startswith("synth_") and image.shape[:2] == (1, 1)
    assert any(side % 16 for side in image.shape[2:])  # whole volume, not padded (like predict: windows pad)
    source, _ = parity_volumes(tiny_plan, "Task42_Missing", synthetic_root, 1)
    assert source == "synthetic"


def test_network_stride_is_measured(dynunet: nn.Module, tiny_plan: Plan) -> None:
    net = dynunet
    assert network_stride(net, tiny_plan) == 4  # product of DynUNet's strides (DiNTS: 2**num_depths)
    coarse = tiny_plan.model_copy(update={"patch_size": (2, 8, 8)})
    assert network_stride(net, coarse) == 2  # never above what every patch side allows
