"""The ONNX exporter: torch -> .onnx (checked by onnx.checker), loaded back on onnxruntime.

torch ships two ONNX exporters. The TorchScript-based one (``dynamo=False``) handles MONAI's DiNTS
with dynamic spatial axes; the dynamo one needs a forward without data-dependent branches and each
spatial axis declared as a multiple of the network's stride. ``auto`` uses the first and falls back
to the second, so an export keeps working when torch drops or breaks one of them (a test pins both).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from automl_seg.errors import ConfigError, ExportError
from automl_seg.interfaces import ExportOptions
from automl_seg_export.module_prep import (
    ArrayOrTensor,
    call_with_array_or_tensor,
    exception_line,
    exportable_copy,
    quiet_loggers,
    warnings_to_debug_log,
)
from automl_seg_export.precise_norm import stage_instance_norms
from automl_seg_export.providers import create_session

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
MIN_OPSET = 13  # first opset with the ops these networks need under dynamic shapes
#: highest opset each torch exporter writes (torch's own limits, read where torch exposes them)
_TORCHSCRIPT_MAX_OPSET = int(
    getattr(getattr(torch.onnx, "_constants", None), "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20)
)
_DYNAMO_MIN_OPSET = 18
_SPATIAL_NAMES = ("depth", "height", "width")


def _opset_range(method: str) -> tuple[int, int]:
    onnx_max = onnx.defs.onnx_opset_version()
    if method == "torchscript":
        return MIN_OPSET, min(_TORCHSCRIPT_MAX_OPSET, onnx_max)
    return _DYNAMO_MIN_OPSET, onnx_max


def _methods_for(options: ExportOptions, opset: int) -> list[str]:
    """The torch exporters to try, in order, that can write ``opset``; a clear error when none can."""
    candidates = ["torchscript", "dynamo"] if options.onnx_exporter == "auto" else [options.onnx_exporter]
    usable = [m for m in candidates if _opset_range(m)[0] <= opset <= _opset_range(m)[1]]
    if not usable:
        ranges = ", ".join(f"{m} exporter {lo}..{hi}" for m in candidates for lo, hi in [_opset_range(m)])
        raise ConfigError(
            f"ONNX opset {opset} is not supported by the installed onnx {onnx.__version__} / torch "
            f"{torch.__version__} ({ranges}); pass --opset within that range (default {DEFAULT_OPSET})"
        )
    return usable


def _dynamic_axes(ndim: int, dynamic_spatial: bool) -> dict[int, str]:
    axes = {0: "batch"}
    if dynamic_spatial:
        axes.update({2 + i: _SPATIAL_NAMES[i] if ndim - 2 == 3 else f"spatial{i}" for i in range(ndim - 2)})
    return axes


def _export_torchscript(net: nn.Module, example: torch.Tensor, path: Path, opset: int, options: ExportOptions) -> None:
    axes = _dynamic_axes(example.ndim, options.dynamic_spatial)
    torch.onnx.export(
        net,
        (example,),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
        do_constant_folding=True,
    )
    _unshare_initializers(path)


def _unshare_initializers(path: Path) -> None:
    """Give every ``Identity`` of an initializer its own copy of the initializer, in place.

    torch's TorchScript exporter shares equal parameters (e.g. the unit scales of untrained norms)
    through such ``Identity`` nodes, and onnxruntime 1.31's graph optimiser mis-wires one that feeds
    an elementwise op: the session then fails to load ("... is not a graph input, initializer, or
    output of a previous node"). A copy costs the size of a norm's parameters."""
    model = onnx.load(str(path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    outputs = {value.name for value in graph.output}
    shared = [
        n for n in graph.node if n.op_type == "Identity" and n.input[0] in initializers and n.output[0] not in outputs
    ]
    if not shared:
        return
    for node in shared:
        copy = onnx.TensorProto()
        copy.CopyFrom(initializers[node.input[0]])
        copy.name = node.output[0]
        graph.initializer.append(copy)
        graph.node.remove(node)
    onnx.save(model, str(path))


def _export_dynamo(net: nn.Module, example: torch.Tensor, path: Path, opset: int, options: ExportOptions) -> None:
    """torch.export: each spatial axis is declared ``spatial_multiple * k`` so strided convs stay exact."""
    dim = torch.export.Dim
    shapes: dict[int, Any] = {0: dim("batch", min=1)}
    if options.dynamic_spatial:
        for axis, name in _dynamic_axes(example.ndim, True).items():
            if axis >= 2:
                shapes[axis] = options.spatial_multiple * dim(f"{name}_blocks", min=1)
    with quiet_loggers("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir"):
        program = torch.onnx.export(
            net,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=(shapes,),
            external_data=False,
            verbose=False,
        )
        if program is None:  # only the TorchScript exporter (dynamo=False) returns none
            raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNX program")
        program.save(str(path), external_data=False)


_EXPORTERS = {"torchscript": _export_torchscript, "dynamo": _export_dynamo}


def _value_info(values: Sequence[onnx.ValueInfoProto]) -> list[dict[str, Any]]:
    """Names, dtypes and (symbolic) shapes as the graph itself declares them."""
    described = []
    for value in values:
        tensor = value.type.tensor_type
        shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
        described.append({"name": value.name, "dtype": dtype, "shape": shape})
    return described


class OnnxPredictor:
    """An onnxruntime session behind the ``Predictor`` interface (numpy or torch in, same kind out)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.providers: list[str] = session.get_providers()
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def __call__(self, x: ArrayOrTensor) -> ArrayOrTensor:  # the same kind out as in
        return call_with_array_or_tensor(self._run, x)


class OnnxExporter:
    """Exports with dynamic batch (and spatial, multiples of ``spatial_multiple``) axes; float32 in/out."""

    name = "onnx"
    suffix = ".onnx"

    def export(self, model: nn.Module, example: torch.Tensor, path: Path, options: ExportOptions) -> dict[str, Any]:
        opset = options.opset or DEFAULT_OPSET
        methods = _methods_for(options, opset)
        net = exportable_copy(model, options.fp16)
        example = example.detach().to("cpu", torch.float32)
        if not options.fp16:  # float16 graphs keep the fused op: their parity bound is reported, not enforced
            log.debug("instance norms staged for float32 precision: %d", stage_instance_norms(net, example))
        failures: list[str] = []
        used = None
        for method in methods:
            try:
                with torch.no_grad(), warnings_to_debug_log():
                    _EXPORTERS[method](net, example, Path(path), opset, options)
            except Exception as exc:  # torch's exporters raise anything; keep the first line of each
                failures.append(f"{method}: {exception_line(exc)}")
                log.warning("torch's %s ONNX exporter failed (%s)", method, failures[-1])
                continue
            used = method
            break
        if used is None:
            raise ExportError(f"ONNX export failed with every torch exporter tried ({'; '.join(failures)})")
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"onnx.checker rejected the exported model: {str(exc).splitlines()[0]}") from exc
        graph = onnx.load(str(path), load_external_data=False).graph
        return {
            "format": "onnx",
            "exporter": f"torch.onnx ({used})",
            "opset": opset,
            "onnx_checker": "passed",
            "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
            "inputs": _value_info(graph.input),
            "outputs": _value_info(graph.output),
            "layout": "NCDHW" if example.ndim == 5 else "NC" + "S" * (example.ndim - 2),
            "compute_dtype": "float16" if options.fp16 else "float32",
            "dynamic_spatial": options.dynamic_spatial,
            "spatial_multiple": options.spatial_multiple,
            "export_example_shape": list(example.shape),
        }

    def load(self, path: Path, providers: list[str] | None = None) -> OnnxPredictor:
        return OnnxPredictor(create_session(Path(path), providers))
