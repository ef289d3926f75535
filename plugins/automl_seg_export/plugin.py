"""Entry point of the export plugin: registers the ONNX, torch.export, MONAI bundle and (legacy) TorchScript
exporters.

The exporter modules import torch/onnx/onnxruntime, so they are imported only when the hook runs
(``automl-seg --help`` and ``plugins list`` stay fast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automl_seg.hookspecs import hookimpl

AUTOML_SEG_API = 2


@hookimpl
def register_exporters(register: Callable[[Any], None]) -> None:
    from automl_seg_export.monai_bundle import MonaiBundleExporter
    from automl_seg_export.onnx_exporter import OnnxExporter
    from automl_seg_export.torch_export_exporter import TorchExportExporter
    from automl_seg_export.torchscript_exporter import TorchScriptExporter

    register(OnnxExporter())
    register(TorchExportExporter())
    register(MonaiBundleExporter())
    register(TorchScriptExporter())
