"""``export_model`` end to end on registered models: attach, --output, refusal, predict on onnxruntime, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from automl_seg.errors import ExportError
from automl_seg.export import ExportRequest, export_model
from automl_seg.plugins import load_plugins
from automl_seg.testing.fixtures import TINY_DATASET

pytestmark = pytest.mark.cli_in_process  # many CLI calls: no Python start for each


def request(world: dict, ref: str, **extra) -> ExportRequest:
    return ExportRequest(ref=ref, registry=world["registry"], data_root=world["data_root"], parity_cases=1, **extra)


def artifact_names(world: dict, ref: str) -> set[str]:
    from automl_seg_registry import Registry

    with Registry.open(world["registry"]) as registry:
        return {a.name for a in registry.get(ref).artifacts}


@pytest.mark.parametrize("space,fmt", [("fixed", "onnx"), ("dints", "onnx")])  # torchscript: the CLI test
def test_export_attaches_artefact_and_sidecar(world: dict, space: str, fmt: str, tmp_path: Path) -> None:
    ref = world["refs"][space]
    result = export_model(request(world, ref, format=fmt, output=tmp_path), world["host"])
    assert result.parity.source == "validation" and result.parity.within_tolerance
    assert result.parity.max_abs_diff < 1e-3 and result.parity.min_dice > 0.99
    assert {fmt, f"{fmt}_sidecar"} <= artifact_names(world, ref)
    assert result.registry_path.is_file() and result.output is not None and result.output.parent == tmp_path
    sidecar = json.loads(result.sidecar_path.read_text())
    assert sidecar["model"]["ref"] == ref and sidecar["artefact"]["sha256"] == result.sha256
    assert sidecar["preprocessing"]["normalization"] == "zscore"
    assert result.output.read_bytes() == result.registry_path.read_bytes()


def test_broken_exporter_fails_parity_and_registers_nothing(world: dict, tmp_path: Path) -> None:
    real = world["host"].exporter("onnx")

    class Broken:
        """Loads the artefact with its logits shifted: what a wrong conversion would look like."""

        name, suffix = "broken", ".onnx"
        export = staticmethod(real.export)

        def load(self, path, providers=None):
            inner = real.load(path, providers)

            class Shifted:
                providers = inner.providers

                def __call__(self, x):
                    return inner(x) + 0.5

            return Shifted()

    class Plugin:
        AUTOML_SEG_API = 1

        @staticmethod
        def register_exporters(register):
            register(Broken())

    from automl_seg.hookspecs import hookimpl

    Plugin.register_exporters = staticmethod(hookimpl(Plugin.register_exporters))
    host = load_plugins(extra=[("broken", Plugin())])
    before = artifact_names(world, world["refs"]["fixed"])
    (tmp_path / "out").mkdir()
    with pytest.raises(ExportError, match="parity check failed.*nothing was registered"):
        export_model(request(world, world["refs"]["fixed"], format="broken", output=tmp_path / "out"), host)
    assert artifact_names(world, world["refs"]["fixed"]) == before
    assert not list((tmp_path / "out").iterdir())


def test_predict_on_onnxruntime_equals_torch(world: dict, tmp_path: Path) -> None:
    from automl_seg_registry import Registry

    from automl_seg.engine.predict import predict_reference

    ref = world["refs"]["dints"]
    if "onnx" not in artifact_names(world, ref):
        export_model(request(world, ref), world["host"])
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((world["data_root"] / TINY_DATASET / "imagesTr").glob("*.nii.gz"))[:2]:
        (images / source.name).symlink_to(source)
    outputs = {}
    with Registry.open(world["registry"]) as registry:
        for backend in ("torch", "onnxruntime"):
            predictions, used = predict_reference(
                registry, ref, world["host"], images, tmp_path / backend, device="cpu", backend=backend, progress=False
            )
            outputs[backend] = {p.case: np.asarray(nib.load(p.output).dataobj) for p in predictions}
    assert used == ["CPUExecutionProvider"]
    assert outputs["torch"].keys() == outputs["onnxruntime"].keys() and len(outputs["torch"]) == 2
    for case, labels in outputs["torch"].items():
        assert np.array_equal(labels, outputs["onnxruntime"][case]), case


def test_predict_on_torch_export_equals_torch(world: dict, tmp_path: Path) -> None:
    """The fixed DynUNet as a torch.export program: exported with parity proof and sidecar, and
    ``predict --backend torch-export`` writes the label maps torch writes."""
    from automl_seg_registry import Registry

    from automl_seg.engine.predict import predict_reference

    ref = world["refs"]["fixed"]
    result = export_model(request(world, ref, format="torch-export", output=tmp_path), world["host"])
    assert result.parity.within_tolerance and result.parity.providers == ["torch:cpu"]
    assert result.output == tmp_path / "fixed-tiny-v1-torch-export.pt2" and result.output.is_file()
    assert json.loads(result.sidecar_path.read_text())["export"]["exporter"] == "torch.export.export"
    assert {"torch-export", "torch-export_sidecar"} <= artifact_names(world, ref)
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((world["data_root"] / TINY_DATASET / "imagesTr").glob("*.nii.gz"))[:2]:
        (images / source.name).symlink_to(source)
    outputs = {}
    with Registry.open(world["registry"]) as registry:
        for backend in ("torch", "torch-export"):
            predictions, used = predict_reference(
                registry, ref, world["host"], images, tmp_path / backend, device="cpu", backend=backend, progress=False
            )
            outputs[backend] = {p.case: np.asarray(nib.load(p.output).dataobj) for p in predictions}
    assert used == ["torch:cpu"] and len(outputs["torch"]) == 2
    for case, labels in outputs["torch"].items():
        assert np.array_equal(labels, outputs["torch-export"][case]), case


def test_cli_predict_without_the_export_is_one_clear_line(world: dict, cli, tmp_path: Path) -> None:
    images = world["data_root"] / TINY_DATASET / "imagesTr"
    done = cli(
        "predict", world["refs"]["dints"], "-i", str(images), "-o", str(tmp_path / "out"),
        "--backend", "torch-export", "--registry", str(world["registry"]),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert "has no torch-export export; run `automl-seg export dints-tiny:1 --format torch-export` first" in message


def cli_args(world: dict, *args: str) -> list[str]:
    return ["export", *args, "--registry", str(world["registry"]), "--data-root", str(world["data_root"])]


def test_cli_exports_with_json(world: dict, cli, tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    done = cli(
        *cli_args(
            world, world["refs"]["fixed"], "--format", "torchscript", "-o", str(out), "--parity-cases", "1", "--json"
        )
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["artifact"] == "torchscript" and report["parity"]["within_tolerance"]
    assert out.is_file() and (tmp_path / "model.pt.json").is_file()
    assert json.loads((tmp_path / "model.pt.json").read_text())["artefact"]["file"] == "model.pt"  # names the copy
    exported = out.read_bytes()
    again = cli(*cli_args(world, world["refs"]["fixed"], "--format", "torchscript", "-o", str(out)))
    assert again.returncode == 2 and "already exists; pass --overwrite" in " ".join(again.stderr.split())
    assert out.read_bytes() == exported


@pytest.mark.parametrize(
    "args,message",
    [
        (["--format", "tflite"], "unknown exporter 'tflite'; installed: monai-bundle, onnx, torch-export, torchscript"),
        (["--opset", "99"], "ONNX opset 99 is not supported"),
        (["-o", "/nonexistent/folder/m.onnx"], "output folder /nonexistent/folder does not exist"),
        (["-o", "/nonexistent/folder/"], "output folder /nonexistent/folder does not exist"),
        (["--fp16", "--providers", "CPUExecutionProvider"], "--fp16 needs a GPU runtime (CUDA or TensorRT)"),
    ],
)
def test_cli_bad_input_is_one_clear_line(world: dict, cli, args: list[str], message: str) -> None:
    # --static: a variant no other test exports, so "already exported" never masks the error under test
    done = cli(*cli_args(world, world["refs"]["fixed"], "--no-progress", "--static", *args))
    assert done.returncode == 2, done.stderr
    assert message in " ".join(done.stderr.split()) and "Traceback" not in done.stderr


def test_cli_ref_without_weights(world: dict, cli) -> None:
    done = cli(*cli_args(world, world["refs"]["bare"]))
    assert done.returncode == 2 and "has no trained weights to export" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
