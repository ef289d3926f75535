"""The deployment sidecar: everything needed to reproduce the prediction without automl-seg."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_seg import __version__
from automl_seg.data.plan import resampling_note
from automl_seg.export.parity import SW_BATCH_SIZE, ParityReport

if TYPE_CHECKING:
    from automl_seg.data.models import Plan

SIDECAR_SCHEMA = "automl-seg-export/1"


def sidecar_path_for(artifact: Path) -> Path:
    """The sidecar lies next to the artefact: ``model.onnx`` -> ``model.onnx.json``."""
    return artifact.with_name(artifact.name + ".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_sidecar(
    *,
    artefact: Path,
    facts: dict[str, Any],
    plan: Plan,
    parity: ParityReport,
    model_info: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to reproduce the prediction without automl-seg."""
    multiple = facts.get("spatial_multiple", plan.divisor)
    return {
        "schema": SIDECAR_SCHEMA,
        "created": datetime.now(UTC).isoformat(),
        "automl_seg_version": __version__,
        "artefact": {"file": artefact.name, "sha256": sha256_file(artefact), "size": artefact.stat().st_size},
        "model": model_info,
        "export": facts,
        "input": {
            **(facts["inputs"][0] if facts.get("inputs") else {}),
            "layout": facts.get("layout", "NCDHW"),
            "channels": [{"index": i, "modality": plan.modality} for i in range(plan.in_channels)],
            "spatial_constraint": (
                f"each spatial side must be a multiple of {multiple} (the network's total stride); "
                "sliding-window inference with roi = patch_size satisfies it"
            ),
        },
        "output": {
            **(facts["outputs"][0] if facts.get("outputs") else {}),
            "meaning": "unnormalised class logits; label = argmax over axis 1",
            "num_classes": plan.num_classes,
            "labels": {str(k): v for k, v in plan.labels.items()},
        },
        "preprocessing": {
            "orientation": plan.orientation,
            "spacing_mm": list(plan.spacing),
            "native_spacing_mm": list(plan.native_spacing) if plan.native_spacing else None,
            "low_resolution": plan.resamples_coarser,
            "crop_nonzero": plan.crop_nonzero,
            "resampling": resampling_note(plan),
            "normalization": plan.normalization,
            "normalization_detail": (
                "per image and channel: (x - mean) / std over nonzero voxels"
                if plan.normalization == "zscore"
                else f"clip to {list(plan.ct_clip or ())}, then per image and channel (x - mean) / std"
            ),
            "ct_clip": list(plan.ct_clip) if plan.ct_clip else None,
            "padding": "none on the volume; the sliding window zero-pads (symmetric) a side shorter than "
            "patch_size and crops the output back",
        },
        "inference": {
            "method": "sliding window (MONAI sliding_window_inference)",
            "patch_size": list(plan.patch_size),
            "overlap": plan.sw_overlap,
            "blend_mode": "gaussian",
            "sw_batch_size": SW_BATCH_SIZE,
        },
        "parity": parity.model_dump(mode="json"),
    }
