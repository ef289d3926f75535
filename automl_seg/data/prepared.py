"""``prepare_data``: from a dataset name to validated, fingerprinted, planned and split data.

``PreparedData`` preprocesses each case at most once (lazily, on first use, with a progress bar)
and keeps the result in memory; datasets and loaders for any subset of cases draw their random
patches from those cached volumes, so no file is read again per step, epoch or subset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from automl_seg.config import DataSettings
from automl_seg.data.fingerprint import fingerprint_dataset
from automl_seg.data.models import Augmentation, Fingerprint, Plan, PlanLimits
from automl_seg.data.msd import DatasetInfo, load_dataset_info
from automl_seg.data.plan import check_patch_size, derive_plan, mirroring_note, plan_warnings
from automl_seg.data.split import holdout_cases, split_cases
from automl_seg.errors import DataError
from automl_seg.progress import track

if TYPE_CHECKING:
    from monai.data import DataLoader
    from torch.utils.data import Dataset

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """A validated dataset with its fingerprint, plan and split, and loaders over its cached volumes.

    Train items are lists of ``plan.samples_per_image`` dicts ``{"image": (C, *patch), "label":
    (1, *patch), "case": id}``; the loaders flatten them, so a train batch holds
    ``batch_size * samples_per_image`` patches. Validation items are whole preprocessed volumes,
    unpadded (sliding-window inference takes any shape); where the plan maps back (``Plan.maps_back``:
    a low-resolution or cropping plan) they also hold the label on the case's own grid
    (``native_label``) and both grids' affines, so the score is taken on the native grid."""

    info: DatasetInfo
    fingerprint: Fingerprint
    plan: Plan
    train_cases: list[str]
    val_cases: list[str]
    progress: bool = True
    #: cases held out of the fingerprint, plan and split (``DataSettings.holdout_fraction``): scored, never trained on
    test_cases: list[str] = field(default_factory=list)
    loader_workers: int = 0  #: worker processes of ``train_loader`` (its batches depend on the count)
    warnings: list[str] = field(default_factory=list)  #: ``plan_warnings``: cases the plan cannot serve well
    _volumes: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _native: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def num_cached(self) -> int:
        return len(self._volumes)

    def preprocessed(self, cases: list[str]) -> list[dict[str, Any]]:
        """The cached preprocessed volumes of ``cases``, preprocessing those not cached yet."""
        files = {case.id: case for case in self.info.cases}
        unknown = [c for c in cases if c not in files]
        if unknown:
            raise DataError(f"case(s) {', '.join(unknown[:5])} are not in {self.info.name}; use ids from its split")
        missing = list(dict.fromkeys(c for c in cases if c not in self._volumes))
        if missing:
            from monai.transforms import Compose

            from automl_seg.data.loaders import single_threaded
            from automl_seg.data.transforms import IMAGE, LABEL, preprocessing

            pipeline = Compose(preprocessing(self.plan))
            for case_id in track(missing, f"preprocessing {self.info.name}", len(missing), self.progress):
                case = files[case_id]
                try:
                    with single_threaded():
                        volume = pipeline({IMAGE: str(case.image), LABEL: str(case.label)})
                except Exception as exc:
                    raise DataError(f"case {case_id} ({case.image}) could not be preprocessed: {exc}") from exc
                volume["case"] = case_id
                self._volumes[case_id] = volume
        return [self._volumes[c] for c in cases]

    def native_labels(self, cases: list[str]) -> list[dict[str, Any]]:
        """``{"native_label", "native_affine", "affine"}`` per case: its label on its own (RAS) grid, that
        grid's affine and the preprocessed grid's (for ``Plan.maps_back`` plans)."""
        missing = [c for c in dict.fromkeys(cases) if c not in self._native]
        if missing:
            import torch
            from monai.transforms import Compose

            from automl_seg.data.loaders import single_threaded
            from automl_seg.data.transforms import LABEL, native_grid

            files = {case.id: case for case in self.info.cases}
            pipeline = Compose(native_grid(self.plan, (LABEL,)))
            for case_id, volume in zip(missing, self.preprocessed(missing), strict=True):
                with single_threaded():
                    label = pipeline({LABEL: str(files[case_id].label)})[LABEL]
                self._native[case_id] = {
                    "native_label": label.as_tensor().to(torch.uint8),
                    "native_affine": torch.as_tensor(label.affine, dtype=torch.float64),
                    "affine": torch.as_tensor(volume["image"].affine, dtype=torch.float64),
                }
        return [self._native[c] for c in cases]

    def train_dataset(
        self, cases: list[str] | None = None, *, seed: int = 0, augmentation: Augmentation | None = None
    ) -> Dataset:
        """Random patches (foreground/background crops, then ``augmentation``) from the cached volumes."""
        from automl_seg.data.loaders import CachedVolumes
        from automl_seg.data.transforms import training_transforms

        transform = training_transforms(self.plan, augmentation=augmentation)
        transform.set_random_state(seed=seed)
        return CachedVolumes(self.preprocessed(self.train_cases if cases is None else cases), transform)

    def val_dataset(self, cases: list[str] | None = None) -> Dataset:
        """Whole preprocessed volumes ``{"image": (C, *spatial), "label": (1, *spatial), "case": id}``."""
        from automl_seg.data.loaders import CachedVolumes
        from automl_seg.data.transforms import validation_transforms

        cases = self.val_cases if cases is None else cases
        volumes = self.preprocessed(cases)
        if self.plan.maps_back:
            volumes = [{**volume, **native} for volume, native in zip(volumes, self.native_labels(cases), strict=True)]
        return CachedVolumes(volumes, validation_transforms(self.plan))

    def train_loader(
        self,
        cases: list[str] | None = None,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_workers: int | None = None,
        augmentation: Augmentation | None = None,
    ) -> DataLoader:
        """Batches of ``batch_size`` (default ``plan.batch_size``) volumes' patches, prepared by
        ``num_workers`` processes (default ``loader_workers``); same seed and workers, same batches."""
        from automl_seg.data.loaders import seeded_loader

        dataset = self.train_dataset(cases, seed=seed, augmentation=augmentation)
        workers = self.loader_workers if num_workers is None else num_workers
        return seeded_loader(dataset, batch_size or self.plan.batch_size, shuffle, seed, workers)

    def val_loader(self, cases: list[str] | None = None, num_workers: int = 0) -> DataLoader:
        """One whole volume per batch, in case order."""
        from automl_seg.data.loaders import seeded_loader

        return seeded_loader(self.val_dataset(cases), batch_size=1, shuffle=False, seed=0, num_workers=num_workers)


def prepare_data(
    settings: DataSettings,
    *,
    progress: bool = True,
    use_cache: bool = True,
    limits: PlanLimits | None = None,
    plan: Plan | None = None,
) -> PreparedData:
    """Locate (downloading a missing MSD task), validate every case, fingerprint, plan and split.

    The plan is derived within ``limits`` (a budget's, see ``automl_seg.data.plan``), or is ``plan``
    itself (a trained model's: its data must have the same channels and classes). Warnings about
    cases the plan cannot serve well are logged and kept in ``PreparedData.warnings``.
    ``use_cache=False`` re-reads every file even when a cached fingerprint matches."""
    if settings.patch_size is not None:
        check_patch_size(settings.patch_size)
    info = load_dataset_info(settings.dataset, settings.data_root, download=True, progress=progress)
    if settings.max_cases is not None:
        info = info.model_copy(update={"cases": info.cases[: settings.max_cases]})
    held_out = holdout_cases([case.id for case in info.cases], settings.holdout_fraction, settings.split_seed)
    visible = info.model_copy(update={"cases": [case for case in info.cases if case.id not in set(held_out)]})
    fingerprint = fingerprint_dataset(visible, progress=progress, use_cache=use_cache)
    split = split_cases([case.id for case in visible.cases], settings.val_fraction, settings.split_seed)
    fingerprint = fingerprint.model_copy(update={"split": split})
    derived = derive_plan(fingerprint, settings.patch_size, limits=limits, mirror=settings.mirror_axes)
    if plan is not None and (plan.in_channels, plan.num_classes) != (derived.in_channels, derived.num_classes):
        raise DataError(
            f"{info.name} has {derived.in_channels} channel(s) and {derived.num_classes} classes but the model expects "
            f"{plan.in_channels} and {plan.num_classes}; use a matching dataset"
        )
    plan = plan or derived
    warnings = plan_warnings(fingerprint, plan)
    for warning in warnings:
        log.warning("%s: %s", info.name, warning)
    log.info(
        "%s: %d cases (%d train, %d val%s), spacing %s mm, patch %s",
        info.name,
        fingerprint.num_cases,
        len(split.train),
        len(split.val),
        f", {len(held_out)} held out" if held_out else "",
        "x".join(f"{s:g}" for s in plan.spacing),
        "x".join(map(str, plan.patch_size)),
    )
    # the planner's reasons matter most where it gave up resolution (data check always shows them)
    log.log(logging.INFO if plan.resamples_coarser else logging.DEBUG, "%s plan: %s", info.name, plan.rationale)
    if settings.mirror_axes is None and (note := mirroring_note(fingerprint)):
        log.info("%s plan: %s", info.name, note)
    return PreparedData(
        info=info,
        fingerprint=fingerprint,
        plan=plan,
        train_cases=list(split.train),
        val_cases=list(split.val),
        progress=progress,
        warnings=warnings,
        test_cases=held_out,
    )
