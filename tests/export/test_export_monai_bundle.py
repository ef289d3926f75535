"""MONAI bundle exports of registered DiNTS and DynUNet models: files, metadata, MONAI's own bundle tools.

``python -m monai.bundle verify_metadata`` downloads the schema its ``schema`` URL names unless the file
it is given exists; no network is reached here, so it is handed the plugin's offline schema.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from automl_seg.export import ExportRequest, export_model
from automl_seg.testing.fixtures import TINY_DATASET

from .conftest import register_models

pytestmark = pytest.mark.cli_in_process


def bundle_cli(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def verify_metadata(folder: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    from automl_seg_export.monai_bundle import LOCAL_SCHEMA

    schema = tmp_path / "schema.json"
    shutil.copyfile(LOCAL_SCHEMA, schema)  # present: verify_metadata skips the download
    return bundle_cli("verify_metadata", "--meta_file", folder / "configs" / "metadata.json", "--filepath", schema)


def run_bundle(folder: Path, images: Path, output: Path) -> None:
    done = bundle_cli(
        "run", "--config_file", folder / "configs" / "inference.json", "--meta_file",
        folder / "configs" / "metadata.json", "--bundle_root", folder, "--dataset_dir", images, "--output_dir", output,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def label_maps(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(nib.load(p).dataobj) for p in sorted(folder.glob("*.nii*"))}


@pytest.fixture(scope="module")
def bundles(world: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both registered models exported once as bundles, into one output folder."""
    out = tmp_path_factory.mktemp("bundles")
    results = {}
    for space in ("fixed", "dints"):
        request = ExportRequest(
            ref=world["refs"][space], format="monai-bundle", output=out, registry=world["registry"],
            data_root=world["data_root"], parity_cases=1,
        )  # fmt: skip
        results[space] = export_model(request, world["host"])
    return results


@pytest.mark.parametrize("space", ["fixed", "dints"])
def test_bundle_export_files_metadata_and_parity(bundles: dict, space: str, tmp_path: Path) -> None:
    result = bundles[space]
    folder = result.folder
    assert folder.name == f"{space}-tiny-v1-monai-bundle" and result.output == folder.with_name(f"{folder.name}.zip")
    assert result.parity.within_tolerance and result.parity.max_abs_diff < 1e-4
    files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert files == {"configs/metadata.json", "configs/inference.json", "models/model.pt", "docs/README.md"}
    with zipfile.ZipFile(result.output) as archive:
        assert {f"{folder.name}/{f}" for f in files} == set(archive.namelist())
    assert result.registry_path.read_bytes() == result.output.read_bytes()
    sidecar = json.loads(folder.with_name(f"{folder.name}.zip.json").read_text())
    assert sidecar["artefact"]["file"] == result.output.name and sidecar["export"]["format"] == "monai-bundle"
    meta = json.loads((folder / "configs" / "metadata.json").read_text())
    data_format = meta["network_data_format"]
    assert data_format["outputs"]["pred"]["channel_def"] == {"0": "background", "1": "anterior", "2": "posterior"}
    assert data_format["inputs"]["image"]["spatial_shape"] == [f"{sidecar['export']['spatial_multiple']}*n"] * 3
    assert len(data_format["inputs"]["image"]["value_range"]) == 2 and meta["numpy_version"] == np.__version__
    inference = json.loads((folder / "configs" / "inference.json").read_text())
    target = {"fixed": "monai.networks.nets.DynUNet", "dints": "monai.networks.nets.DiNTS"}[space]
    assert inference["network_def"]["_target_"] == target
    assert [t["_target_"] for t in inference["preprocessing"]["transforms"]] == [
        "LoadImaged", "Orientationd", "Spacingd", "NormalizeIntensityd",
    ]  # fmt: skip
    assert "## This MONAI bundle" in (folder / "docs" / "README.md").read_text()
    verified = verify_metadata(folder, tmp_path)
    assert verified.returncode == 0 and "metadata is verified with no error" in verified.stdout + verified.stderr
    checked = bundle_cli(
        "verify_net_in_out", "network_def", "--meta_file", folder / "configs" / "metadata.json",
        "--config_file", folder / "configs" / "inference.json", "--n", "2", "--device", "cpu",
    )  # fmt: skip
    assert checked.returncode == 0 and "data shape of network is verified" in checked.stdout + checked.stderr


def test_metadata_schema_catches_a_broken_metadata(tmp_path: Path) -> None:
    """The offline schema is a real check: without network_data_format, verify_metadata fails."""
    folder = tmp_path / "bundle"
    (folder / "configs").mkdir(parents=True)
    meta = {key: "1" for key in ("schema", "version", "monai_version", "pytorch_version", "numpy_version")}
    meta.update(required_packages_version={}, task="t", description="d", authors="a", copyright="c")
    (folder / "configs" / "metadata.json").write_text(json.dumps(meta))
    done = verify_metadata(folder, tmp_path)
    assert done.returncode != 0 and "network_data_format" in done.stderr


def test_bundle_run_labels_equal_predict(world: dict, bundles: dict, tmp_path: Path) -> None:
    """``monai.bundle run`` of the exported DiNTS writes the label maps ``automl-seg predict`` writes."""
    from automl_seg_registry import Registry

    from automl_seg.engine.predict import predict_reference

    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((world["data_root"] / TINY_DATASET / "imagesTr").glob("*.nii.gz"))[:2]:
        (images / source.name).symlink_to(source)
    run_bundle(bundles["dints"].folder, images, tmp_path / "bundle")
    with Registry.open(world["registry"]) as registry:
        ref = world["refs"]["dints"]
        predict_reference(registry, ref, world["host"], images, tmp_path / "predict", device="cpu", progress=False)
    bundle, predicted = label_maps(tmp_path / "bundle"), label_maps(tmp_path / "predict")
    assert bundle.keys() == predicted.keys() and len(bundle) == 2
    for case, labels in predicted.items():
        assert bundle[case].shape == labels.shape and (bundle[case] == labels).mean() >= 0.999, case


def cli_args(world: dict, ref: str, *args: str) -> list[str]:
    return ["export", ref, "--format", "monai-bundle", "--registry", str(world["registry"]), "--data-root",
            str(world["data_root"]), "--parity-cases", "1", "--no-progress", *args]  # fmt: skip


def test_cli_bundle_bad_input_is_one_clear_line(world: dict, bundles: dict, cli, tmp_path: Path) -> None:
    def error(*args: str) -> str:
        done = cli(*cli_args(world, *args))
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        return " ".join(done.stderr.split())

    assert "has no trained weights to export" in error(world["refs"]["bare"], "-o", str(tmp_path))
    folder = bundles["fixed"].folder  # an earlier bundle: --output names it
    assert f"{folder.with_name(folder.name + '.zip')} already exists; pass --overwrite" in error(
        world["refs"]["fixed"], "-o", str(folder)
    )
    (tmp_path / "b.zip").write_text("occupied")
    assert f"{tmp_path / 'b.zip'} already exists; pass --overwrite" in error(
        world["refs"]["dints"], "-o", str(tmp_path / "b")
    )
    mine = tmp_path / "dints-tiny-v1-monai-bundle"  # what the export would write in tmp_path: not a bundle
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    message = error(world["refs"]["dints"], "-o", str(tmp_path), "--overwrite")
    assert "is not a bundle folder, so it is kept" in message and (mine / "notes.txt").read_text() == "mine"
    already = error(world["refs"]["dints"], "-o", str(tmp_path / "again"))
    assert "already has an export 'monai-bundle'" in already and not (tmp_path / "again").exists()


@pytest.mark.integration
def test_bundle_run_on_real_hippocampus_equals_predict(real_data_root: Path, host, tmp_path: Path) -> None:
    """Registered DiNTS (a seeded random architecture) and DynUNet models for Task04_Hippocampus (seeded,
    untrained weights whose label maps are far from uniform): on three real cases ``monai.bundle run``
    writes the labels ``automl-seg predict`` writes (agreement >= 0.999 per case; the parity proof runs
    on synthetic volumes, which keeps the export quick)."""
    from automl_seg_registry import Registry

    from automl_seg.data.models import Plan
    from automl_seg.engine.predict import predict_reference

    labels = {0: "background", 1: "Anterior", 2: "Posterior"}
    plan = Plan(dataset="Task04_Hippocampus", modality="MRI", in_channels=1, num_classes=3, labels=labels,
                spacing=(1.0, 1.0, 1.0), patch_size=(32, 32, 32), divisor=16)  # fmt: skip
    refs = register_models(tmp_path, plan, "real-task04", host, arch_seed=0)
    images = tmp_path / "images"
    images.mkdir()
    for case in ("hippocampus_001", "hippocampus_017", "hippocampus_204"):
        (images / f"{case}.nii.gz").symlink_to(
            real_data_root.resolve() / "Task04_Hippocampus" / "imagesTr" / f"{case}.nii.gz"
        )
    for space in ("fixed", "dints"):
        request = ExportRequest(
            ref=refs[space], format="monai-bundle", output=tmp_path, registry=tmp_path / "registry",
            data_root=tmp_path / "no-data", parity_cases=1,
        )  # fmt: skip
        result = export_model(request, host)
        run_bundle(result.folder, images, tmp_path / space / "bundle")
        with Registry.open(tmp_path / "registry") as registry:
            predict_reference(registry, refs[space], host, images, tmp_path / space / "predict", progress=False)
        bundle, predicted = label_maps(tmp_path / space / "bundle"), label_maps(tmp_path / space / "predict")
        assert bundle.keys() == predicted.keys() and len(bundle) == 3
        for case, labels_map in predicted.items():
            agreement = float((bundle[case] == labels_map).mean())
            assert bundle[case].shape == labels_map.shape and agreement >= 0.999, (space, case, agreement)
            assert max(np.bincount(labels_map.ravel(), minlength=3)) < 0.99 * labels_map.size, (space, case)
