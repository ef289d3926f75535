"""Inference preprocessing is exactly invertible: predictions land on the input file's grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from monai.transforms import Invertd

from automl_seg.data.models import Plan
from automl_seg.data.transforms import inference_transforms
from automl_seg.testing.fixtures import tiny_plan


def _plan(**changes) -> Plan:
    return tiny_plan((32, 32, 32)).model_copy(update=changes)


@pytest.mark.parametrize(
    "affine",
    [
        np.diag([1.0, 1.0, 1.0, 1.0]),
        np.array([[-1.5, 0, 0, 10.0], [0, 0, 2.0, -5.0], [0, 1.2, 0, 3.0], [0, 0, 0, 1]]),  # LPS-like, 1.2-2 mm
    ],
)
def test_invert_round_trip_restores_shape_and_affine(tmp_path, affine):
    rng = np.random.default_rng(0)
    path = tmp_path / "input.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(5, 1, (19, 17, 23)).astype(np.float32), affine), path)
    plan = _plan()
    transform = inference_transforms(plan)
    item = transform({"image": str(path)})
    assert bool((item["image"] != 0).all())  # no zero margins: volumes are not padded (sliding windows pad)
    assert np.allclose(item["image"].affine[:3, :3].numpy(), np.eye(3))  # RAS, 1 mm
    item["pred"] = item["image"].clone()
    restored = Invertd("pred", transform=transform, orig_keys="image", nearest_interp=True)(item)["pred"]
    assert tuple(restored.shape[1:]) == (19, 17, 23)
    np.testing.assert_allclose(restored.affine.numpy(), affine, atol=1e-5)


def test_ct_normalisation_clips_to_the_window(tmp_path):
    path = tmp_path / "ct.nii.gz"
    image = np.full((16, 16, 16), 40.0, np.float32)
    image[0] = -1000.0
    image[1] = 3000.0
    nib.save(nib.Nifti1Image(image, np.eye(4)), path)
    out = inference_transforms(_plan(normalization="ct", ct_clip=(-100.0, 250.0)))({"image": str(path)})["image"]
    values = out[0, :, :, :].numpy()
    low, high = values[0].mean(), values[1].mean()
    clipped = (np.clip(image, -100, 250) - np.clip(image, -100, 250).mean()) / np.clip(image, -100, 250).std()
    assert low == pytest.approx(clipped[0].mean(), abs=1e-4) and high == pytest.approx(clipped[1].mean(), abs=1e-4)


def _sphere_file(path, shape=(40, 36, 30), spacing=(0.5, 0.5, 0.5), border=0):
    """An image with a bright sphere on a dimmer background (zero ``border`` around it), and its label."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    label = (((grid - np.array(shape) / 2) / (np.array(shape) / 4)) ** 2).sum(-1) <= 1
    image = np.where(label, 3.0, 1.0).astype(np.float32)
    if border:
        image, label = np.pad(image, border), np.pad(label, border)
    nib.save(nib.Nifti1Image(image, np.diag([*spacing, 1.0])), path)
    return label.astype(np.uint8)


def test_crop_to_nonzero_is_inverted_onto_the_input_grid(tmp_path):
    path = tmp_path / "bordered.nii.gz"
    _sphere_file(path, shape=(20, 18, 16), spacing=(1.0, 1.0, 1.0), border=5)
    plan = _plan(crop_nonzero=True)
    transform = inference_transforms(plan)
    item = transform({"image": str(path)})
    assert tuple(item["image"].shape[1:]) == (20, 18, 16)  # the zero border is gone
    item["pred"] = item["image"].clone()
    restored = Invertd("pred", transform=transform, orig_keys="image", nearest_interp=False)(item)["pred"]
    assert tuple(restored.shape[1:]) == (30, 28, 26) and float(restored[0, :5].abs().sum()) == 0.0


def test_low_resolution_prediction_lands_on_the_native_grid(tmp_path):
    import torch

    from automl_seg.engine.inference import predict_file_labels

    path = tmp_path / "fine.nii.gz"
    truth = _sphere_file(path, shape=(40, 36, 30), spacing=(0.5, 0.5, 0.5), border=4)
    plan = _plan(num_classes=2, labels={0: "bg", 1: "sphere"}, spacing=(1.25, 1.25, 1.25))
    plan = plan.model_copy(update={"native_spacing": (0.5, 0.5, 0.5), "crop_nonzero": True})
    assert plan.resamples_coarser and plan.maps_back

    image = nib.load(path).get_fdata()
    middle = (2.0 - image[image != 0].mean()) / image[image != 0].std()  # halfway from background to sphere

    def threshold(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([middle - x, x - middle], 1)

    labels = predict_file_labels(threshold, path, plan, torch.device("cpu"), sw_batch_size=1)
    assert labels.shape == truth.shape
    dice = 2 * np.logical_and(labels == 1, truth == 1).sum() / ((labels == 1).sum() + (truth == 1).sum())
    assert dice > 0.95 and labels[:4].max() == 0


def _volume(rng: np.random.Generator) -> dict:
    """A 24^3 volume whose label has a small foreground cube in one corner."""
    label = np.zeros((1, 24, 24, 24), dtype=np.float32)
    label[:, 2:6, 2:6, 2:6] = 1
    return {"image": rng.normal(size=(1, 24, 24, 24)).astype(np.float32), "label": label}


@pytest.mark.parametrize(("ratio", "low", "high"), [(1.0, 1.0, 1.0), (0.0, 0.0, 0.25), (0.33, 0.2, 0.55)])
def test_foreground_ratio_decides_how_many_patches_hold_foreground(ratio: float, low: float, high: float) -> None:
    from automl_seg.data.models import Augmentation
    from automl_seg.data.transforms import training_transforms

    plan = tiny_plan((16, 16, 16)).model_copy(update={"samples_per_image": 4})
    transform = training_transforms(plan, (8, 8, 8), Augmentation(foreground_ratio=ratio, mirror=False))
    transform.set_random_state(seed=0)
    rng = np.random.default_rng(0)
    patches = [p for _ in range(20) for p in transform(_volume(rng))]
    share = np.mean([float(np.asarray(p["label"]).max() > 0) for p in patches])
    assert low <= share <= high


def test_the_plan_sets_the_foreground_ratio_unless_training_does() -> None:
    from automl_seg.data.models import Augmentation
    from automl_seg.data.transforms import training_transforms

    plan = tiny_plan((16, 16, 16)).model_copy(update={"samples_per_image": 4, "foreground_ratio": 1.0})
    shares = []
    for augmentation in (Augmentation(mirror=False), Augmentation(foreground_ratio=0.0, mirror=False)):
        transform = training_transforms(plan, (8, 8, 8), augmentation)
        transform.set_random_state(seed=0)
        rng = np.random.default_rng(0)
        patches = [p for _ in range(10) for p in transform(_volume(rng))]
        shares.append(np.mean([float(np.asarray(p["label"]).max() > 0) for p in patches]))
    assert shares[0] == 1.0 and shares[1] <= 0.25


@pytest.mark.parametrize("axes", [(0, 1, 2), (1,), ()])
def test_training_flips_only_along_the_plans_mirror_axes(axes: tuple[int, ...]) -> None:
    from monai.transforms import RandFlipd

    from automl_seg.data.transforms import training_transforms

    transform = training_transforms(tiny_plan((16, 16, 16)).model_copy(update={"mirror_axes": axes}))
    flips = [step for step in transform.transforms if isinstance(step, RandFlipd)]
    assert [flip.flipper.spatial_axis for flip in flips] == list(axes)


def test_full_augmentation_keeps_patch_shape_and_label_values() -> None:
    from automl_seg.data.models import Augmentation
    from automl_seg.data.transforms import training_transforms

    aug = Augmentation(spatial=1.0, gamma=1.0, noise_blur=1.0)
    transform = training_transforms(tiny_plan((16, 16, 16)), (16, 16, 16), aug)
    transform.set_random_state(seed=1)
    plain = training_transforms(tiny_plan((16, 16, 16)), (16, 16, 16))
    plain.set_random_state(seed=1)
    volume = _volume(np.random.default_rng(1))
    augmented, reference = transform(dict(volume))[0], plain(dict(volume))[0]
    assert tuple(augmented["image"].shape) == (1, 16, 16, 16)
    assert set(np.unique(np.asarray(augmented["label"]))) <= {0.0, 1.0}  # nearest neighbour for labels
    assert len(transform.transforms) == len(plain.transforms) + 4  # affine, noise, blur, gamma
    assert not np.allclose(np.asarray(augmented["image"]), np.asarray(reference["image"]))
