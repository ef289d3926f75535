"""Datasets: MSD task discovery and download, validation, fingerprint, plan, split and loaders.

Names are imported on first use, so ``import automl_seg.data.models`` (and the CLI's ``--help``)
does not pull in torch or MONAI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "prepare_data": "automl_seg.data.prepared",
    "PreparedData": "automl_seg.data.prepared",
    "load_dataset_info": "automl_seg.data.msd",
    "DatasetInfo": "automl_seg.data.msd",
    "CaseFiles": "automl_seg.data.msd",
    "Fingerprint": "automl_seg.data.models",
    "Plan": "automl_seg.data.models",
    "Split": "automl_seg.data.models",
    "derive_plan": "automl_seg.data.plan",
    "inference_transforms": "automl_seg.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'automl_seg.data' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
