"""``predict``: NIfTI files in, NIfTI label maps out, on each input's exact grid and header.

The network runs behind a *window predictor* (``torch.Tensor -> torch.Tensor``) so the same code
serves a torch module and an exported model on ONNX Runtime; MONAI runs the window loop.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import nibabel as nib
import numpy as np
import torch

from automl_seg.data.models import Plan
from automl_seg.data.nifti import load_image
from automl_seg.data.plan import resampling_note
from automl_seg.engine.inference import (
    Window,
    case_name,
    check_input,
    list_nifti,
    mirrored,
    predict_file_labels,
    predictor_window,
)
from automl_seg.errors import UserError
from automl_seg.progress import progress_bar

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.engine.postprocess import Postprocessing
    from automl_seg.plugins import PluginHost

Backend = Literal["torch", "onnxruntime", "torch-export"]
#: backends that run an export of the record, with the exporter (and artifact) each needs
EXPORT_BACKENDS: dict[str, str] = {"onnxruntime": "onnx", "torch-export": "torch-export"}


@dataclass(frozen=True)
class Prediction:
    case: str
    source: Path
    output: Path
    shape: tuple[int, ...]
    labels_present: tuple[int, ...]
    resampling: str = ""  #: how the input was resampled and the prediction mapped back (``resampling_note``)


def export_window(
    registry: Registry, record: ArchitectureRecord, host: PluginHost, fmt: str, providers: Sequence[str] | None
) -> tuple[Window, list[str]]:
    """A window predictor running the record's ``fmt`` export (ONNX on ONNX Runtime, a torch.export program),
    and the providers (or torch device) it really uses."""
    if not any(a.name == fmt for a in record.artifacts):
        raise UserError(f"{record.ref} has no {fmt} export; run `automl-seg export {record.ref} --format {fmt}` first")
    path = registry.artifact_path(record.ref, fmt, verify=True)
    predictor = host.exporter(fmt).load(path, list(providers) if providers else None)
    return predictor_window(predictor), list(predictor.providers)


def output_file(output_dir: Path, source: Path) -> Path:
    """The input's file name (same case name, same .nii/.nii.gz format) inside ``output_dir``."""
    return output_dir / source.name


def check_output_dir(output_dir: Path) -> None:
    """A clear error where ``--output`` names an existing file (it must be a folder)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output {output_dir} is a file; give a folder for the label maps (it is created if missing)")


def prepare_output_dir(output_dir: Path, sources: Sequence[Path], overwrite: bool) -> list[Path]:
    """Create ``output_dir`` and check it is writable and holds none of the outputs (unless ``overwrite``)."""
    check_output_dir(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise UserError(
            f"output folder {output_dir} is not writable ({exc.strerror or type(exc).__name__}); "
            "choose another --output"
        ) from exc
    outputs = [output_file(output_dir, s) for s in sources]
    if any(output.resolve() == source.resolve() for output, source in zip(outputs, sources, strict=True)):
        raise UserError(f"--output {output_dir} holds the input images; label maps would replace them: choose another")
    names = [o.name for o in outputs]
    if len(set(names)) != len(names):
        raise UserError("several inputs have the same case name; give them distinct file names")
    existing = [o for o in outputs if o.exists()]
    if existing and not overwrite:
        shown = ", ".join(o.name for o in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise UserError(f"{len(existing)} output file(s) already exist in {output_dir} ({shown}); pass --overwrite")
    return outputs


def write_label_map(labels: np.ndarray, reference: Path, destination: Path) -> None:
    """Save ``labels`` with the reference image's affine and header (uint8, no intensity scaling),
    atomically (temp file + rename), so an interrupted run leaves no partial output."""
    source = load_image(reference)
    header = source.header.copy()
    image = nib.Nifti1Image(labels.astype(np.uint8), source.affine, header=header)
    image.set_data_dtype(np.uint8)
    image.header.set_slope_inter(1.0, 0.0)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{destination.name}.",
        suffix=".nii.gz" if destination.name.endswith(".gz") else ".nii",
        dir=destination.parent,
    )
    os.close(fd)
    try:
        nib.save(image, tmp)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def predict_files(
    window: Window,
    source: Path,
    output_dir: Path,
    plan: Plan,
    device: torch.device,
    *,
    overwrite: bool = False,
    sw_batch_size: int = 4,
    progress: bool = True,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Prediction]:
    """Predict every NIfTI file of ``source`` (a file or a folder) into ``output_dir``."""
    sources = list_nifti(source)
    outputs = prepare_output_dir(output_dir, sources, overwrite)
    done = []
    with progress_bar(progress) as bar:
        task = bar.add_task("predicting", total=len(sources))
        for src, out in zip(sources, outputs, strict=True):
            labels = predict_file_labels(window, src, plan, device, sw_batch_size, postprocess)
            write_label_map(labels, src, out)
            done.append(
                Prediction(
                    case=case_name(src),
                    source=src,
                    output=out,
                    shape=tuple(labels.shape),
                    labels_present=tuple(int(v) for v in np.unique(labels)),
                    resampling=resampling_note(plan),
                )
            )
            bar.advance(task)
    return done


def export_record(records: Sequence[ArchitectureRecord], backend: str) -> ArchitectureRecord:
    """The one record whose export a backend runs; an explicit ensemble has no single export."""
    if len(records) > 1:
        raise UserError(
            f"--backend {backend} runs one exported model: cross-validate (train --folds N) and export that record, "
            "whose exported graph holds every fold, or predict this ensemble with --backend torch"
        )
    return records[0]


def predict_reference(
    registry: Registry,
    ref: str | Sequence[str],
    host: PluginHost,
    source: Path,
    output_dir: Path,
    *,
    device: str = "auto",
    backend: Backend = "torch",
    providers: Sequence[str] | None = None,
    overwrite: bool = False,
    tta: bool = False,
    progress: bool = True,
    postprocessing: Postprocessing | None = None,
) -> tuple[list[Prediction], list[str]]:
    """Predict with the registered model ``ref`` (torch, its ONNX export on ONNX Runtime, or its
    torch.export program on ``device``), or the ensemble of several refs (torch), with test-time
    mirroring when ``tta`` and the model's stored postprocessing (or ``postprocessing``) applied on
    every backend.

    Returns the predictions and, for exports, the providers (torch devices) really used."""
    from automl_seg.engine.devices import resolve_device
    from automl_seg.engine.ensemble import check_members, load_model, stored_postprocessing

    refs = [ref] if isinstance(ref, str) else list(ref)
    records = [registry.get(r) for r in refs]
    plan = check_members(records)
    for path in list_nifti(source):  # bad input fails before any model is loaded
        check_input(path, plan)
    check_output_dir(output_dir)
    if backend in EXPORT_BACKENDS:
        on = [str(resolve_device(device))] if backend == "torch-export" else providers
        window, used = export_window(registry, export_record(records, backend), host, EXPORT_BACKENDS[backend], on)
        torch_device = torch.device("cpu")
        chosen = postprocessing.check(plan) if postprocessing is not None else stored_postprocessing(records, plan)
    else:
        torch_device = resolve_device(device)
        model = load_model(registry, [r.ref for r in records], host, torch_device, postprocessing)
        window, chosen, used = model.network, model.postprocessing, []
    if tta:
        window = mirrored(window, plan.mirror_axes)
    post = partial(chosen.apply, plan=plan) if chosen.keep_largest else None
    predictions = predict_files(
        window, source, output_dir, plan, torch_device, overwrite=overwrite, progress=progress, postprocess=post
    )
    return predictions, used
