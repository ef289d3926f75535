"""Every command, fed bad input (``bad_inputs.yaml``, kept as data next to this test): one ``error:``
line naming the culprit, exit code 2 (1 for a run that failed on its own), never "internal error",
never a traceback. Commands that would train are given inputs that must fail before training.

The CLI runs in this process (``cli_in_process``); one tiny trained registry and a set of damaged
files and datasets (the ``world``) serve every case.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from automl_seg.data.synthetic import make_synthetic_msd

CASES_FILE = Path(__file__).with_name("bad_inputs.yaml")
CASES: list[dict] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
DATASET = "Task99_Synthetic"

pytestmark = [pytest.mark.cli_in_process, pytest.mark.timeout(120)]


def _task_variant(root: Path, base: Path, name: str, edit) -> Path:  # noqa: ANN001 - edit(task folder)
    """A copy of the synthetic data root whose task ``edit`` damaged."""
    target = root / name
    shutil.copytree(base, target)
    edit(target / DATASET)
    return target


def _edit_json(change):  # noqa: ANN001, ANN202 - change(dataset.json dict) -> new content
    def edit(task: Path) -> None:
        path = task / "dataset.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return edit


def _entry(key: str, value: str):  # noqa: ANN202
    def change(meta: dict) -> dict:
        meta["training"][0][key] = value
        return meta

    return change


def _without(key: str):  # noqa: ANN202
    return lambda meta: {k: v for k, v in meta.items() if k != key}


def _save(array: np.ndarray, path: Path) -> Path:
    nib.save(nib.Nifti1Image(array.astype(np.float32), np.eye(4)), str(path))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The placeholders of ``bad_inputs.yaml``: data roots, a trained registry, damaged files."""
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings, train_settings
    from automl_seg.plugins import load_plugins

    root = tmp_path_factory.mktemp("bad-input-world")
    data = root / "data"
    make_synthetic_msd(data, num_cases=5, shape=(14, 14, 14))
    task = data / DATASET
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=root / "work", progress=False)
    tiny = train_settings("quick", overrides={"epochs": 1, "iterations": 1, "val_every": 10, "val_cases": 1})
    with Registry.open(root / "registry") as registry:
        result = run_search(
            run, DataSettings(dataset=DATASET, data_root=data, patch_size=(16, 16, 16)), tiny, {},
            registry=registry, host=load_plugins(),
        )  # fmt: skip
    tmp = root / "tmp"
    tmp.mkdir()
    image = task / "imagesTr" / "synth_000.nii.gz"
    raw = gzip.decompress(image.read_bytes())
    files = {
        "file": tmp / "plain.txt",
        "nifti1d": _save(np.zeros(20), tmp / "line.nii.gz"),
        "nifti2d": _save(np.zeros((20, 20)), tmp / "slice.nii.gz"),
        "nifti5d": _save(np.zeros((8, 8, 8, 1, 2)), tmp / "five.nii.gz"),
        "nifti2ch": _save(np.zeros((16, 16, 16, 2)), tmp / "two-channels.nii.gz"),
        "corrupt": tmp / "corrupt.nii.gz",
        "garbage": tmp / "garbage.nii",
        "truncated": tmp / "truncated.nii.gz",
        "cut_gzip": tmp / "cut.nii.gz",
        "empty_nii": tmp / "empty.nii.gz",
    }
    files["file"].write_text("not what was asked for")
    files["corrupt"].write_bytes(image.read_bytes()[:300])
    files["garbage"].write_bytes(b"hello world" * 40)
    files["truncated"].write_bytes(gzip.compress(raw[: len(raw) // 2]))
    files["cut_gzip"].write_bytes(image.read_bytes()[:-40])
    files["empty_nii"].write_bytes(b"")
    folders = {name: tmp / name for name in ("empty_dir", "mixed_dir", "occupied", "corrupt_labels")}
    for folder in folders.values():
        folder.mkdir()
    shutil.copy(image, folders["mixed_dir"] / image.name)
    _save(np.zeros((20, 20)), folders["mixed_dir"] / "flat.nii.gz")
    (folders["occupied"] / image.name).write_bytes(b"an earlier prediction")
    for label in (task / "labelsTr").iterdir():
        shutil.copy(label, folders["corrupt_labels"] / label.name)
    (folders["corrupt_labels"] / "synth_000.nii.gz").write_bytes(b"not a label")
    variants = {
        "ds_nojson": lambda t: (t / "dataset.json").unlink(),
        "ds_badjson": lambda t: (t / "dataset.json").write_text("{not json"),
        "ds_list": lambda t: (t / "dataset.json").write_text("[]"),
        "ds_notraining": _edit_json(_without("training")),
        "ds_emptytraining": _edit_json(lambda meta: meta | {"training": []}),
        "ds_entry": _edit_json(lambda meta: meta | {"training": ["imagesTr/synth_000.nii.gz"]}),
        "ds_outside": _edit_json(_entry("image", "../../elsewhere/img.nii.gz")),
        "ds_absolute": _edit_json(_entry("image", "/etc/hostname")),
        "ds_label_outside": _edit_json(_entry("label", "./labelsTr/../../../secret.nii.gz")),
        "ds_missing_image": _edit_json(_entry("image", "./imagesTr/nope.nii.gz")),
        "ds_duplicate": _edit_json(lambda meta: meta | {"training": meta["training"] + meta["training"][:1]}),
        "ds_nobackground": _edit_json(lambda meta: meta | {"labels": {"1": "thing"}}),
        "ds_nomodality": _edit_json(_without("modality")),
        "ds_badlabelkey": _edit_json(lambda meta: meta | {"labels": {"zero": "background", "1": "a"}}),
        "ds_corrupt_image": lambda t: (t / "imagesTr" / "synth_000.nii.gz").write_bytes(b"broken"),
    }
    datasets = {name: _task_variant(root / "datasets", data, name, edit) for name, edit in variants.items()}
    configs = {
        "cfg_garbled": ("garbled.yaml", "data: [unclosed"),
        "cfg_list": ("list.yaml", "- 1\n- 2\n"),
        "cfg_section": ("section.yaml", "bogus:\n  x: 1\n"),
        "cfg_key": ("key.yaml", f"data:\n  dataset: {DATASET}\n  colour: blue\n"),
        "cfg_type": ("type.yaml", f"data:\n  dataset: {DATASET}\nsearch:\n  strategy: fixed\ntrain:\n  epochs: many\n"),
        "cfg_tune_key": ("tune-key.yaml", "tune:\n  colour: blue\n"),
        "cfg_tune_search": ("tune-search.yaml", "search:\n  epochs: 3\n"),
    }
    for name, text in configs.values():
        (tmp / name).write_text(text)
    return {
        "data": str(data),
        "registry": str(root / "registry"),
        "ref": result.trained.record.ref,
        "name": result.trained.record.name,
        "arch": result.architecture.ref,
        "tmp": str(tmp),
        "image": str(image),
        "images": str(task / "imagesTr"),
        "labels": str(task / "labelsTr"),
        **{key: str(path) for key, path in {**files, **folders, **datasets}.items()},
        **{key: str(tmp / name) for key, (name, _) in configs.items()},
    }


def _fill(text: str, world: dict[str, str]) -> str:
    for key, value in world.items():
        text = text.replace("{" + key + "}", value)
    return text


def test_the_table_is_large_and_well_formed() -> None:
    assert len(CASES) >= 150
    assert len({case["id"] for case in CASES}) == len(CASES)
    assert all(set(case) <= {"id", "args", "culprit", "code", "env"} and case["culprit"] for case in CASES)
    commands = {case["args"][0] for case in CASES}
    every = {"search", "train", "evaluate", "predict", "export", "tune", "registry", "data", "plugins", "compare"}
    assert every <= commands


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_gets_one_clear_line(case: dict, world: dict[str, str], cli) -> None:
    args = [_fill(arg, world) for arg in case["args"]]
    env = {"AUTOML_SEG_REGISTRY": world["registry"], "AUTOML_SEG_DATA": world["data"], "COLUMNS": "400"}
    env |= {key: _fill(value, world) for key, value in case.get("env", {}).items()}
    result = cli(*args, env=env)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "internal error" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for culprit in case["culprit"]:
        assert _fill(culprit, world) in errors[0], errors[0]
    assert result.returncode == case.get("code", 2), output
