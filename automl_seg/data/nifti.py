"""Opening a NIfTI file as the image type the code reads (voxels, shape, affine, header)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
from nibabel.spatialimages import SpatialImage

from automl_seg.errors import DataError


def load_image(path: Path) -> SpatialImage:
    """``nib.load(path)``, known to hold voxels on a grid: nibabel types what it loads as any image
    format it reads (some have no affine); every NIfTI image is a ``SpatialImage``."""
    image = nib.load(path)
    if not isinstance(image, SpatialImage):
        raise DataError(f"{path} is a {type(image).__name__}, not a NIfTI image; give .nii or .nii.gz files")
    return image
