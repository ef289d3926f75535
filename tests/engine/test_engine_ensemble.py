"""Ensembles: a cross-validated record's folds and explicit --ensemble lists, softmax averaged, with
their postprocessing, through the library and the CLI; members that disagree are one error line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from automl_seg.engine.ensemble import SoftmaxAverage, check_members
from automl_seg.errors import ConfigError

pytestmark = pytest.mark.cli_in_process


@dataclass
class Models:
    root: Path
    data_root: Path
    trained: str
    cross_validated: str
    other_patch: str


@pytest.fixture(scope="module")
def models(trained_registry, tmp_path_factory: pytest.TempPathFactory) -> Models:
    """The trained registry plus a 2-fold cross-validated record and a copy of the trained model with another
    patch size in its plan (an incompatible ensemble member)."""
    from automl_seg_registry import Registry

    from automl_seg.engine.pipeline import retrain
    from automl_seg.engine.settings import RunSettings, train_settings
    from automl_seg.plugins import load_plugins

    work = tmp_path_factory.mktemp("ensemble-work")
    train = train_settings("quick", overrides={"epochs": 1, "iterations": 1, "val_cases": 1})
    run = RunSettings(device="cpu", workdir=work, progress=False, folds=2)
    with Registry.open(trained_registry.root) as registry:
        cv = retrain(trained_registry.architecture, run, train, registry=registry, host=load_plugins(),
                     data_options={"data_root": trained_registry.data_root})  # fmt: skip
        trained = registry.get(trained_registry.trained)
        plan = {**trained.dataset.plan, "patch_size": [32, 32, 32]}
        payload = trained.model_dump(exclude={"version", "artifacts", "created"})
        payload["dataset"]["plan"] = plan
        weights = registry.artifact_path(trained.ref, "weights")
        other = registry.register(type(trained).model_validate(payload), files={"weights": (weights, "weights")})
    return Models(trained_registry.root, trained_registry.data_root, trained_registry.trained, cv.record.ref, other.ref)


def test_softmax_average_is_the_mean_of_the_members_softmax() -> None:
    torch.manual_seed(0)
    members = [torch.nn.Conv3d(1, 3, 1) for _ in range(3)]
    x = torch.randn(2, 1, 4, 4, 4)
    expected = sum(torch.softmax(m(x), dim=1) for m in members) / 3
    assert torch.allclose(SoftmaxAverage(members)(x), expected, atol=1e-6)


def test_members_must_share_dataset_and_plan(models: Models) -> None:
    from automl_seg_registry import Registry

    with Registry.open(models.root) as registry:
        trained, other = registry.get(models.trained), registry.get(models.other_patch)
        assert check_members([trained, registry.get(models.cross_validated)]).patch_size == (16, 16, 16)
        with pytest.raises(
            ConfigError, match=r"disagree on the patch size: .* has \(16, 16, 16\), .* has \(32, 32, 32\)"
        ):
            check_members([trained, other])
        renamed = trained.model_copy(update={"dataset": trained.dataset.model_copy(update={"name": "Task02_Heart"})})
        with pytest.raises(ConfigError, match="disagree on the dataset"):
            check_members([trained, renamed])


def test_a_cross_validated_record_predicts_as_the_ensemble_of_its_folds(models: Models) -> None:
    from automl_seg_registry import Registry

    from automl_seg.engine.ensemble import load_model
    from automl_seg.engine.postprocess import Postprocessing
    from automl_seg.plugins import load_plugins

    with Registry.open(models.root) as registry:
        model = load_model(registry, [models.cross_validated], load_plugins())
        both = load_model(registry, [models.cross_validated, models.trained], load_plugins(),
                          postprocessing=Postprocessing(keep_largest=("anterior",)))  # fmt: skip
        stored = registry.get(models.cross_validated).provenance["postprocessing"]["keep_largest"]
    assert isinstance(model.network, SoftmaxAverage) and model.members == 2
    assert model.postprocessing.keep_largest == tuple(stored)
    assert both.members == 3 and both.postprocessing.keep_largest == ("anterior",)
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        probabilities = model.network(x)
    assert torch.allclose(probabilities.sum(1), torch.ones(1, 16, 16, 16), atol=1e-5)


def _errors(result) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_cli_predict_and_evaluate_an_ensemble(cli, models: Models, tmp_path: Path) -> None:
    images = models.data_root / "Task99_Synthetic" / "imagesTr"
    base = ["--registry", models.root, "--device", "cpu", "--no-progress"]
    ensemble = f"{models.trained},{models.cross_validated}"
    predicted = cli("predict", "--ensemble", ensemble, "--input", images, "--output", tmp_path / "out", "--tta", *base)
    assert predicted.returncode == 0, predicted.stderr
    assert len(list((tmp_path / "out").glob("*.nii.gz"))) == 5
    evaluated = cli("evaluate", models.cross_validated, "--data-root", models.data_root, "--keep-largest", "none",
                    "--json", *base)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"dice_per_class"' in evaluated.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ensemble", "{trained},{other}"], "ensemble members disagree on the patch size"),
        (["--ensemble", "{trained}"], "--ensemble '{trained}' names 1 model(s); give at least two"),
        (["{trained}", "--ensemble", "{trained},{cv}"], "give REF or --ensemble REF,REF,..., not both"),
        (["{cv}", "--keep-largest", "liver"], "postprocessing names class(es) liver that Task99_Synthetic does not"),
    ],
)
def test_cli_bad_ensembles_are_one_line(cli, models: Models, tmp_path: Path, args: list[str], message: str) -> None:
    names = {"trained": models.trained, "other": models.other_patch, "cv": models.cross_validated}
    args = [a.format(**names) for a in args]
    images = models.data_root / "Task99_Synthetic" / "imagesTr"
    for command in (["predict", "--input", images, "--output", tmp_path / "out"], ["evaluate"]):
        result = cli(*command, *args, "--registry", models.root, "--device", "cpu")
        errors = _errors(result)
        assert result.returncode == 2 and len(errors) == 1, result.stderr
        assert errors[0].startswith(f"error: {message.format(**names)}"), result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_cross_validated_record_exports_as_one_onnx_graph(cli, models: Models, tmp_path: Path) -> None:
    """One graph of every fold, parity-checked against the torch ensemble; its sidecar lists the members
    and the postprocessing, and onnxruntime predicts the labels torch predicts."""
    import json

    import nibabel as nib
    import numpy as np

    from automl_seg.export import ExportRequest, export_model

    result = export_model(ExportRequest(ref=models.cross_validated, registry=models.root, data_root=models.data_root,
                                        parity_cases=2))  # fmt: skip
    assert result.parity.within_tolerance and result.parity.enforced
    sidecar = json.loads(result.sidecar_path.read_text())
    members = sidecar["model"]["ensemble"]["members"]
    assert [m["artifact"] for m in members] == ["weights_fold0", "weights_fold1"]
    assert "keep_largest_component" in sidecar["model"]["postprocessing"]
    images = models.data_root / "Task99_Synthetic" / "imagesTr"
    base = ["--input", images, "--registry", models.root, "--device", "cpu", "--no-progress", "--keep-largest",
            "anterior"]  # fmt: skip
    for backend in ("torch", "onnxruntime"):
        done = cli("predict", models.cross_validated, *base, "--output", tmp_path / backend, "--backend", backend)
        assert done.returncode == 0, done.stderr
    for path in (tmp_path / "torch").glob("*.nii.gz"):
        torch_labels = np.asarray(nib.load(path).dataobj)
        ort_labels = np.asarray(nib.load(tmp_path / "onnxruntime" / path.name).dataobj)
        assert (torch_labels == ort_labels).mean() > 0.999


def test_an_explicit_ensemble_exports_to_output_as_one_graph(cli, models: Models, tmp_path: Path) -> None:
    """``export --ensemble``: one ONNX graph of every member's networks (a model and a 2-fold record),
    parity-proved against the torch ensemble, written with its sidecar to --output only."""
    import json

    import onnxruntime as ort
    from automl_seg_registry import Registry

    from automl_seg.engine.ensemble import load_model
    from automl_seg.plugins import load_plugins

    def artifacts() -> dict[str, list[str]]:
        with Registry.open(models.root) as registry:
            return {r.ref: sorted(a.name for a in r.artifacts) for r in registry.list()}

    before = artifacts()
    refs = [models.trained, models.cross_validated]
    done = cli("export", "--ensemble", ",".join(refs), "--output", tmp_path, "--registry", models.root,
               "--data-root", models.data_root, "--parity-cases", "2", "--no-progress", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["registry_path"] is None and result["parity"]["enforced"] and result["parity"]["within_tolerance"]
    graph = Path(result["output"])
    assert graph.parent == tmp_path and graph.suffix == ".onnx"
    sidecar = json.loads(Path(result["sidecar_path"]).read_text())
    assert sidecar["model"]["ensemble_of"] == refs and sidecar["artefact"]["file"] == graph.name
    members = [(m["ref"], m["artifact"]) for m in sidecar["model"]["ensemble"]["members"]]
    fold_ref = models.cross_validated
    assert members == [(models.trained, "weights"), (fold_ref, "weights_fold0"), (fold_ref, "weights_fold1")]
    assert artifacts() == before  # nothing registered

    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    with Registry.open(models.root) as registry, torch.no_grad():
        expected = load_model(registry, refs, load_plugins()).network(x).numpy()
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert abs(probabilities - expected).max() < 1e-4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "an ensemble is not one registered model, so its export is not stored in the registry: give --output"),
        (["--output", "{tmp}", "--format", "monai-bundle"], "the monai-bundle exporter packages one registered model"),
        (["--output", "{tmp}", "--ensemble", "{trained},{other}"], "ensemble members disagree on the patch size"),
        (["{trained}", "--output", "{tmp}"], "give REF or --ensemble REF,REF,..., not both"),
    ],
)
def test_bad_ensemble_exports_are_one_line(cli, models: Models, tmp_path: Path, args: list[str], message: str) -> None:
    names = {"trained": models.trained, "other": models.other_patch, "tmp": str(tmp_path)}
    args = [a.format(**names) for a in args]
    if "--ensemble" not in args:
        args += ["--ensemble", f"{models.trained},{models.cross_validated}"]
    result = cli("export", *args, "--registry", models.root, "--data-root", models.data_root, "--no-progress")
    errors = _errors(result)
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {message}"), result.stderr
    assert not any(tmp_path.iterdir())
