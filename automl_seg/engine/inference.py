"""From a NIfTI file to a label map on that file's own grid, through any window predictor.

The window predictor is any callable ``(B, C, *patch) tensor -> (B, classes, *patch) logits``: a torch
module or an exported model (ONNX Runtime). MONAI's ``sliding_window_inference`` runs the window
loop; the data layer's ``inference_transforms`` preprocesses, and ``Invertd`` maps the prediction back:
the label map by nearest neighbour, or, where the plan resamples coarser or crops (``Plan.maps_back``),
the logits linearly before the argmax.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from automl_seg.data.models import Plan
from automl_seg.data.nifti import load_image
from automl_seg.errors import DataError

if TYPE_CHECKING:
    from monai.transforms import Compose

log = logging.getLogger(__name__)

Window = Callable[[torch.Tensor], torch.Tensor]
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def case_name(path: Path) -> str:
    """The file name without its NIfTI suffix: ``hippocampus_001.nii.gz`` -> ``hippocampus_001``."""
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def list_nifti(source: Path) -> list[Path]:
    """A NIfTI file, or every NIfTI file in a folder (sorted); a clear error for anything else."""
    if source.is_file():
        if not is_nifti(source):
            raise DataError(f"{source} is not a NIfTI file; give .nii or .nii.gz files (or a folder of them)")
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and is_nifti(p))
        if not files:
            raise DataError(f"{source} holds no .nii/.nii.gz files; point it at a folder of NIfTI images")
        return files
    raise DataError(f"{source} does not exist; give a NIfTI file or a folder of them")


def check_input(path: Path, plan: Plan) -> None:
    """``path``'s header read and checked against ``plan`` before any inference: a readable NIfTI, a 3D
    volume (4D with channels last for several modalities), as many channels as the model takes."""
    try:
        shape = tuple(int(side) for side in load_image(path).shape)
    except Exception as exc:  # nibabel raises many types for damaged files; its message names the damage
        raise DataError(f"{path} cannot be read as a NIfTI image ({_reason(exc)}); check the file") from exc
    shown = "x".join(map(str, shape))
    if len(shape) not in (3, 4):
        raise DataError(
            f"{path} is a {len(shape)}D image (shape {shown}); the model segments 3D volumes "
            f"with {plan.in_channels} channel(s): give a 3D volume (4D with channels last for several channels)"
        )
    channels = shape[3] if len(shape) == 4 else 1
    if channels != plan.in_channels:
        raise DataError(f"{path} has {channels} channel(s) (shape {shown}) but the model expects {plan.in_channels}")


def predictor_window(predictor: Callable[[np.ndarray], np.ndarray]) -> Window:
    """A window over an exported model's ``Predictor``, which takes and gives float32 numpy (the exporter
    contract): tensors in and out, on the input's device, for MONAI's sliding window."""

    def window(batch: torch.Tensor) -> torch.Tensor:
        logits = predictor(batch.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(np.asarray(logits, dtype=np.float32)).to(batch.device)

    return window


def mirrored(window: Window, mirror_axes: Sequence[int] = (0, 1, 2)) -> Window:
    """Test-time mirroring, nnU-Net's default at inference: the mean of the window's logits over every
    flip of the patch along the spatial ``mirror_axes`` (a plan's; each flipped back), 2^3 = 8 predictions
    per window in 3D. Training flips along the same axes at random, so each flip is a view the network has
    learnt; averaging them smooths out the orientation it happens to segment worst. No axes: the window."""
    if not mirror_axes:
        log.warning("test-time mirroring: the model's plan flips along no axis (its classes keep their order "
                    "along every axis), so it predicts as without --tta")  # fmt: skip
    axes = [2 + axis for axis in mirror_axes]  # after the batch and channel dimensions
    flips = [dims for n in range(1, len(axes) + 1) for dims in itertools.combinations(axes, n)]

    def mirrored_window(x: torch.Tensor) -> torch.Tensor:
        total = window(x)
        for dims in flips:
            total = total + torch.flip(window(torch.flip(x, dims)), dims)
        return total / (len(flips) + 1)

    return mirrored_window


def sliding_window_logits(window: Window, image: torch.Tensor, plan: Plan, sw_batch_size: int = 4) -> torch.Tensor:
    """Logits (B, classes, *spatial) of ``image`` (B, C, *spatial) by MONAI's sliding-window inference."""
    from monai.inferers import sliding_window_inference

    with torch.no_grad():
        logits = sliding_window_inference(
            image, roi_size=plan.patch_size, sw_batch_size=sw_batch_size, predictor=window,
            overlap=plan.sw_overlap, mode="gaussian",
        )  # fmt: skip
    if not isinstance(logits, torch.Tensor):  # MONAI returns what the window does: a tuple or dict of tensors
        raise TypeError(f"the window predictor returned a {type(logits).__name__}, not a tensor of logits")
    return logits


def logits_on_grid(
    logits: torch.Tensor, affine: torch.Tensor, target_affine: torch.Tensor, shape: Sequence[int]
) -> torch.Tensor:
    """Logits (C, *spatial) on the grid of ``affine`` resampled linearly onto another grid (``target_affine``,
    ``shape``): a low-resolution plan's prediction on the case's own grid (labels are taken after, by argmax).
    Outside the source grid the border logits repeat (a cropped-away border is background there)."""
    from monai.data import MetaTensor
    from monai.transforms import SpatialResample

    plain = logits.as_tensor() if isinstance(logits, MetaTensor) else logits  # its own meta would clash
    source = MetaTensor(plain.detach().float().cpu(), affine=affine.detach().cpu().double())
    resample = SpatialResample(mode="bilinear", padding_mode="border", dtype=np.float32)  # computes in torch.float32
    resampled = resample(source, dst_affine=target_affine.detach().cpu().double(), spatial_size=tuple(shape))
    return torch.as_tensor(resampled)


def load_preprocessed(path: Path, plan: Plan) -> tuple[dict[str, Any], Compose]:
    """The file through ``inference_transforms`` (data dict, transforms); clear errors for bad files."""
    from automl_seg.data.transforms import inference_transforms

    transforms = inference_transforms(plan)
    try:
        data = transforms({"image": str(path)})
    except Exception as exc:
        raise DataError(f"{path} cannot be read as a NIfTI image ({_reason(exc)}); check the file") from exc
    channels = data["image"].shape[0]
    if channels != plan.in_channels:
        raise DataError(f"{path} has {channels} channel(s) but the model expects {plan.in_channels}")
    return data, transforms


def predict_file_labels(
    window: Window,
    path: Path,
    plan: Plan,
    device: torch.device,
    sw_batch_size: int = 4,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The label map (uint8) of one NIfTI file on the file's own voxel grid (preprocessing inverted),
    then through ``postprocess``."""
    from monai.data import MetaTensor
    from monai.transforms import Invertd

    data, transforms = load_preprocessed(path, plan)
    image = data["image"]
    logits = sliding_window_logits(window, image[None].to(device), plan, sw_batch_size)
    if plan.maps_back:  # low resolution or cropped: logits back linearly, then the labels
        values = logits[0].to(torch.float32).cpu()
    else:
        values = logits.argmax(1).to(torch.float32).cpu()
    prediction = MetaTensor(values, meta=dict(image.meta), applied_operations=list(image.applied_operations))
    invert = Invertd(keys="pred", transform=transforms, orig_keys="image", nearest_interp=not plan.maps_back)
    restored = invert({"pred": prediction, "image": image})["pred"]
    if plan.maps_back:
        labels = np.asarray(restored.argmax(0).detach().cpu().numpy()).astype(np.uint8)
    else:
        labels = np.asarray(restored[0].detach().cpu().numpy()).round().astype(np.uint8)
    return labels if postprocess is None else postprocess(labels)


def read_label(path: Path, reference: Path) -> np.ndarray:
    """A label file's voxels; it must be on the same grid (shape and affine) as its image."""
    try:
        label, image = load_image(path), load_image(reference)
        voxels = np.asanyarray(label.dataobj)
    except Exception as exc:
        raise DataError(f"{path} cannot be read as a NIfTI label ({_reason(exc)}); check the file") from exc
    if label.shape[:3] != image.shape[:3] or not np.allclose(label.affine, image.affine, atol=1e-4):
        raise DataError(f"label {path} is not on the grid of its image {reference} (shape or affine differ)")
    return voxels.reshape(label.shape[:3]).astype(np.int64)


def _reason(exc: BaseException) -> str:
    """The root cause's type and message on one line: nibabel's says what is wrong with the file (a
    MONAI transform wraps it in a RuntimeError naming only the transform object)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message[:200]}" if message else type(exc).__name__
