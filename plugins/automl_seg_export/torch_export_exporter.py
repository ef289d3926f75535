"""The torch.export exporter: an ``ExportedProgram`` saved as ``.pt2``, loadable with ``torch.export.load``.

``torch.export`` traces the network into a graph of ATen operations with symbolic shapes: the batch
axis is free and each spatial axis is declared ``spatial_multiple * k`` (the network's total stride),
so strided convolutions and upsampling stay exact at every size the declaration admits. The file
needs torch alone (no automl-seg, no MONAI) to load and run, in Python or, through AOTInductor, C++.
It replaces ``torch.jit.trace`` (the legacy TorchScript exporter), which torch deprecates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from automl_seg.errors import ExportError
from automl_seg.interfaces import ExportOptions
from automl_seg_export.module_prep import (
    ModulePredictor,
    exception_line,
    exportable_copy,
    quiet_loggers,
    torch_device,
    warnings_to_debug_log,
)

_SPATIAL_NAMES = ("depth", "height", "width")


def _spatial_names(example: torch.Tensor) -> list[str]:
    return list(_SPATIAL_NAMES) if example.ndim == 5 else [f"spatial{i}" for i in range(example.ndim - 2)]


def dynamic_shapes(example: torch.Tensor, options: ExportOptions) -> dict[int, Any]:
    """Batch free (at least 1); spatial axes multiples of ``spatial_multiple`` when dynamic, else fixed."""
    dim = torch.export.Dim
    shapes: dict[int, Any] = {0: dim("batch", min=1)}
    if options.dynamic_spatial:
        for axis, name in enumerate(_spatial_names(example), start=2):
            shapes[axis] = options.spatial_multiple * dim(f"{name}_blocks", min=1)
    return shapes


def tracing_example(example: torch.Tensor, options: ExportOptions) -> torch.Tensor:
    """What the tracer sees: a size of 1 (a batch of one, a side of one stride) lets it specialise that axis
    to the constant 1, so dynamic axes get at least 2 (a batch of 2, sides of at least 2 strides)."""
    multiple = options.spatial_multiple
    sides = [max(int(s), 2 * multiple) if options.dynamic_spatial else int(s) for s in example.shape[2:]]
    return torch.randn(max(2, example.shape[0]), example.shape[1], *sides, generator=torch.Generator().manual_seed(0))


def declared_shape(example: torch.Tensor, channels: int, options: ExportOptions) -> list[int | str]:
    """The shape the program accepts (or gives), as the sidecar writes it: ``4*depth_blocks`` for dynamic axes."""
    if not options.dynamic_spatial:
        return ["batch", channels, *(int(s) for s in example.shape[2:])]
    return ["batch", channels, *(f"{options.spatial_multiple}*{name}_blocks" for name in _spatial_names(example))]


class TorchExportExporter:
    """``torch.export.export`` with dynamic batch and stride-multiple spatial axes; float32 in/out."""

    name = "torch-export"
    suffix = ".pt2"

    def export(self, model: nn.Module, example: torch.Tensor, path: Path, options: ExportOptions) -> dict[str, Any]:
        net = exportable_copy(model, options.fp16)
        example = example.detach().to("cpu", torch.float32)
        traced_on = tracing_example(example, options)
        try:
            with torch.no_grad(), warnings_to_debug_log(), quiet_loggers("torch.export", "torch._dynamo"):
                program = torch.export.export(net, (traced_on,), dynamic_shapes=(dynamic_shapes(example, options),))
                torch.export.save(program, str(path))
        except Exception as exc:  # torch.export raises anything, with pages of detail: one line for the user
            raise ExportError(f"torch.export failed: {exception_line(exc)}") from exc
        nodes = {node.name: node for node in program.graph.nodes}
        num_classes = int(nodes[program.graph_signature.user_outputs[0]].meta["val"].shape[1])
        layout = "NCDHW" if example.ndim == 5 else "NC" + "S" * (example.ndim - 2)
        return {
            "format": "torch-export",
            "exporter": "torch.export.export",
            "versions": {"torch": torch.__version__},
            "inputs": [{"name": "x", "dtype": "float32", "shape": declared_shape(example, example.shape[1], options)}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": declared_shape(example, num_classes, options)}],
            "layout": layout,
            "compute_dtype": "float16" if options.fp16 else "float32",
            "dynamic_spatial": options.dynamic_spatial,
            "spatial_multiple": options.spatial_multiple,
            "export_example_shape": list(example.shape),
            "load": "torch.export.load(path).module()",
        }

    def load(self, path: Path, providers: list[str] | None = None) -> ModulePredictor:
        device = torch_device(providers, "a torch.export program")
        with warnings_to_debug_log():
            program = torch.export.load(str(path))
        return ModulePredictor(program.module().to(device), device)
