"""The TorchScript exporter (legacy): a traced module (``torch.jit.trace``) loadable from C++ libtorch or Python.

torch deprecates TorchScript; ``torch-export`` (``automl_seg_export.torch_export_exporter``) is its
successor. This one stays while torch still traces and loads TorchScript.

Tracing records the operations run on the example, so Python control flow is frozen at export
time (DiNTS' topology is fixed by then, so nothing is lost); tensor shapes are not frozen, and the
parity check runs the traced module on the real volumes to prove it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from automl_seg.errors import ExportError
from automl_seg.interfaces import ExportOptions
from automl_seg_export.module_prep import (
    ArrayOrTensor,
    call_with_array_or_tensor,
    exception_line,
    exportable_copy,
    torch_device,
    warnings_to_debug_log,
)


class TorchScriptPredictor:
    """A loaded TorchScript module behind the ``Predictor`` interface (numpy or torch in, same kind out)."""

    def __init__(self, module: torch.jit.ScriptModule, device: torch.device) -> None:
        self.module = module
        self.device = device
        self.providers: list[str] = [f"torch:{device}"]

    def _run(self, x: np.ndarray) -> np.ndarray:
        # The profiling executor re-optimises the graph for every new input shape, which costs seconds
        # per shape on DiNTS-sized graphs; plain execution computes the same ops without that cost.
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return self.module(torch.from_numpy(x).to(self.device)).float().cpu().numpy()

    def __call__(self, x: ArrayOrTensor) -> ArrayOrTensor:  # the same kind out as in
        return call_with_array_or_tensor(self._run, x)


class TorchScriptExporter:
    name = "torchscript"
    suffix = ".pt"

    def export(self, model: nn.Module, example: torch.Tensor, path: Path, options: ExportOptions) -> dict[str, Any]:
        net = exportable_copy(model, options.fp16)
        example = example.detach().to("cpu", torch.float32)
        try:
            with torch.no_grad(), warnings_to_debug_log():
                traced = torch.jit.trace(net, (example,), check_trace=False)
                traced.save(str(path))
        except Exception as exc:  # the tracer raises anything; one line for the user
            raise ExportError(f"TorchScript tracing failed: {exception_line(exc)}") from exc
        spatial = ["depth", "height", "width"][: example.ndim - 2] if example.ndim <= 5 else ["spatial"]
        return {
            "format": "torchscript",
            "exporter": "torch.jit.trace",
            "versions": {"torch": torch.__version__},
            "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", example.shape[1], *spatial]}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", "num_classes", *spatial]}],
            "layout": "NCDHW" if example.ndim == 5 else "NC" + "S" * (example.ndim - 2),
            "compute_dtype": "float16" if options.fp16 else "float32",
            "dynamic_spatial": True,
            "spatial_multiple": options.spatial_multiple,
            "export_example_shape": list(example.shape),
        }

    def load(self, path: Path, providers: list[str] | None = None) -> TorchScriptPredictor:
        device = torch_device(providers, "TorchScript")
        with warnings_to_debug_log():
            module = torch.jit.load(str(path), map_location=device).eval()
        return TorchScriptPredictor(module, device)
