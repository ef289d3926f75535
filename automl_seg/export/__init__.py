"""Exporting a registered model: artefact, parity proof, deployment sidecar, registry attachment.

``export_model`` is the pipeline behind ``automl-seg export``:

1. resolve the record, check the request is possible (format, weights, output folder, name free);
2. export the trained network through the exporter plugin found by name (``onnx.checker`` runs
   inside the ONNX exporter);
3. prove parity: torch and the artefact run the same sliding-window inference on the validation
   volumes of the record's dataset (seeded synthetic volumes shaped like the plan's patch when the
   data is not found) and must agree within ``atol`` (fp32; fp16 is report-only);
4. write the sidecar JSON a C++/Triton/onnxruntime user needs to reproduce the prediction, attach
   artefact and sidecar to the record and copy both to ``--output``.

Nothing is attached or written to ``--output`` unless every step succeeded. One module per step:
``request`` (what is asked, checks), ``stride``, ``parity``, ``sidecar`` and ``pipeline``.
"""

from __future__ import annotations

from automl_seg.export.parity import (
    CaseParity,
    ParityReport,
    compare_case,
    measure_parity,
    parity_volumes,
    synthetic_volumes,
)
from automl_seg.export.pipeline import export_model, export_network
from automl_seg.export.request import ExportRequest, ExportResult, artifact_name, output_targets
from automl_seg.export.sidecar import SIDECAR_SCHEMA, build_sidecar, sha256_file, sidecar_path_for
from automl_seg.export.stride import network_stride

__all__ = [
    "CaseParity",
    "ExportRequest",
    "ExportResult",
    "ParityReport",
    "SIDECAR_SCHEMA",
    "artifact_name",
    "build_sidecar",
    "compare_case",
    "export_model",
    "export_network",
    "measure_parity",
    "network_stride",
    "output_targets",
    "parity_volumes",
    "sha256_file",
    "sidecar_path_for",
    "synthetic_volumes",
]
