"""Reading an MSD task's ``dataset.json``: which cases exist, their files, channels and labels.

Only the JSON and the presence of the files it names are checked here; voxels are read later, in
one validating pass (``automl_seg.data.scan``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from automl_seg.errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")


class CaseFiles(BaseModel):
    """One labelled training case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    image: Path
    label: Path


class DatasetInfo(BaseModel):
    """The facts ``dataset.json`` states about a task, with every referenced file resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str  # the task folder name, e.g. "Task04_Hippocampus"
    title: str  # dataset.json's own "name", e.g. "Hippocampus"
    root: Path  # the task folder
    modality: dict[int, str]  # channel index -> modality name ("MRI", "CT", "FLAIR", ...)
    labels: dict[int, str]  # label value -> class name, background (0) included
    cases: list[CaseFiles]

    @property
    def num_channels(self) -> int:
        return len(self.modality)

    @property
    def dataset_json(self) -> Path:
        return self.root / "dataset.json"


def case_id(path: Path) -> str:
    """``.../hippocampus_001.nii.gz`` -> ``hippocampus_001``."""
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path} is missing; an MSD task folder holds dataset.json, imagesTr/ and labelsTr/")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); check the file's permissions or re-download the task") from exc
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it or re-download the task"
        ) from exc
    if not isinstance(meta, dict):
        raise DataError(f"{path} must hold a JSON object with 'training', 'labels' and 'modality'")
    return meta


def _index_map(meta: dict, key: str, path: Path) -> dict[int, str]:
    """``{"0": "MRI"}`` -> ``{0: "MRI"}``, with one clear error for anything else."""
    raw = meta.get(key)
    if raw is not None and not isinstance(raw, dict):
        raise DataError(
            f'{path}: \'{key}\' must be an object from index to name (e.g. {{"0": "..."}}), not a {type(raw).__name__}'
        )
    if not raw:
        raise DataError(f'{path} lacks a non-empty \'{key}\' object (e.g. {{"0": "..."}}); add it')
    try:
        mapping = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: every key of '{key}' must be an integer, got {sorted(raw)}") from exc
    if sorted(mapping) != list(range(len(mapping))):
        raise DataError(
            f"{path}: the keys of '{key}' must number its entries from 0 without gaps (0..{len(mapping) - 1}), "
            f"got {sorted(mapping)}" + ("; label 0 is the background" if key == "labels" and 0 not in mapping else "")
        )
    return dict(sorted(mapping.items()))


def _training_cases(meta: dict, task: Path, path: Path) -> list[CaseFiles]:
    training = meta.get("training")
    if training is None:
        raise DataError(f'{path} lacks the \'training\' list of {{"image", "label"}} entries; add it')
    if not isinstance(training, list) or not training:
        raise DataError(f'{path}: \'training\' must be a non-empty list of {{"image", "label"}} entries')
    cases: list[CaseFiles] = []
    seen: set[str] = set()
    for i, entry in enumerate(training):
        if not (
            isinstance(entry, dict) and isinstance(entry.get("image"), str) and isinstance(entry.get("label"), str)
        ):
            raise DataError(f'{path}: training entry {i} must be {{"image": "...", "label": "..."}}, got {entry!r}')
        image, label = task / entry["image"], task / entry["label"]
        for kind, file in (("image", image), ("label", label)):
            if not Path(os.path.normpath(file)).is_relative_to(os.path.normpath(task)):
                raise DataError(
                    f"{kind} path {entry[kind]!r} (training entry {i} in {path}) points outside the task folder "
                    f"{task}; keep every file inside it (e.g. imagesTr/case.nii.gz)"
                )
        for kind, file in (("image", image), ("label", label)):
            if not file.is_file():
                raise DataError(
                    f"{kind} file {file} (training entry {i} in {path}) is missing; restore it or remove the entry"
                )
        cid = case_id(image)
        if cid in seen:
            raise DataError(f"{path}: case '{cid}' is listed twice in 'training'; remove the duplicate")
        seen.add(cid)
        cases.append(CaseFiles(id=cid, image=image.resolve(), label=label.resolve()))
    return cases


def read_dataset_info(task: Path) -> DatasetInfo:
    """Parse and check ``task/dataset.json`` (no voxel reads; file presence is checked)."""
    path = task / "dataset.json"
    meta = _read_json(path)
    modality = _index_map(meta, "modality", path)
    labels = _index_map(meta, "labels", path)
    if len(labels) < 2:
        raise DataError(f"{path}: 'labels' must declare background (0) and at least one class")
    return DatasetInfo(
        name=task.name,
        title=str(meta.get("name") or task.name),
        root=task.resolve(),
        modality=modality,
        labels=labels,
        cases=_training_cases(meta, task, path),
    )


def load_dataset_info(
    name: str, data_root: Path | None, *, download: bool = False, progress: bool = True
) -> DatasetInfo:
    """Find task ``name`` under the data root (see ``automl_seg.paths.data_root``) and read its dataset.json.

    With ``download``, a known MSD task missing under the root is downloaded first."""
    from automl_seg.data.locate import find_task

    return read_dataset_info(find_task(name, data_root, download=download, progress=progress))
