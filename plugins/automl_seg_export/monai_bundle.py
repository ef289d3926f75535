"""The MONAI Bundle exporter: a registered model as a bundle folder that ``python -m monai.bundle run`` runs.

The bundle (MONAI Bundle Specification) holds:

- ``configs/metadata.json``: versions, task, labels, evaluation metrics and ``network_data_format``
  (shape, dtype, value range and channel meaning of the network's input and output, and of the
  post-processed label map), checked against ``bundle_metadata_schema.json`` before it is written;
- ``configs/inference.json``: load, orientation, spacing and normalisation exactly as automl-seg
  preprocesses (the data layer's own config items), the network built from MONAI's classes (the search
  space's ``monai_network_config``: ``DiNTS``/``TopologyInstance``, ``DynUNet``), MONAI's sliding-window
  inferer with the plan's patch and overlap, argmax, ``Invertd`` back onto each input's grid and
  ``SaveImaged``. Its ``run`` needs MONAI, torch and nibabel only (no ignite);
- ``models/model.pt``: the state dict, checked to load (strictly) into the MONAI-built network;
- ``docs/README.md``: the model card and how to run the bundle.

The core zips the folder for the registry; the parity proof loads the bundle's ``network_def`` and
``model.pt`` back through MONAI's config parser.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import monai
import nibabel
import numpy as np
import torch
from torch import nn

from automl_seg.errors import ConfigError, ExportError
from automl_seg.interfaces import ExportOptions, ExportSubject
from automl_seg_export.module_prep import ModulePredictor, torch_device, warnings_to_debug_log

#: MONAI's metadata schema that the bundle names (downloaded by ``monai.bundle verify_metadata``)
SCHEMA_URL = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"
#: the offline check written with this plugin (the specification's required fields and tensor format)
LOCAL_SCHEMA = Path(__file__).with_name("bundle_metadata_schema.json")
SW_BATCH_SIZE = 4  # what automl-seg predict uses
RUN_COMMAND = (
    "python -m monai.bundle run --config_file configs/inference.json --bundle_root . "
    "--dataset_dir IMAGES_FOLDER --output_dir OUTPUT_FOLDER"
)


def parsed_network(parser: Any) -> nn.Module:
    """``network_def`` of a MONAI config parser (MONAI's DiNTS prints a patch-size hint: kept off stdout)."""
    with warnings_to_debug_log(), contextlib.redirect_stdout(io.StringIO()):
        return parser.get_parsed_content("network_def")


def inference_config(subject: ExportSubject, network_config: dict[str, Any]) -> dict[str, Any]:
    """``configs/inference.json``: every ``.nii``/``.nii.gz`` of ``dataset_dir`` to a label map in ``output_dir``."""
    plan = subject.plan
    predict = "$torch.no_grad()(lambda d: {**d, 'pred': @inferer(d['image'][None].to(@device), @network)[0].cpu()})"
    return {
        "imports": ["$import glob", "$import os"],
        "bundle_root": ".",
        "dataset_dir": "$os.path.join(@bundle_root, 'images')",
        "output_dir": "$os.path.join(@bundle_root, 'eval')",
        "datalist": "$sorted(glob.glob(os.path.join(@dataset_dir, '*.nii*')))",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "network_def": network_config,
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": subject.preprocessing},
        "dataset": {"_target_": "Dataset", "data": "$[{'image': f} for f in @datalist]", "transform": "@preprocessing"},
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": list(plan.patch_size),
            "sw_batch_size": SW_BATCH_SIZE,
            "overlap": plan.sw_overlap,
            "mode": "gaussian",
        },
        "postprocessing": {"_target_": "Compose", "transforms": postprocessing(subject)},
        "predict": predict,
        "checkpoint": "$torch.load(os.path.join(@bundle_root, 'models', 'model.pt'), map_location=@device, "
        "weights_only=True)",
        "initialize": ["$@network.load_state_dict(@checkpoint)", "$@network.eval()"],
        "run": ["$[@postprocessing(@predict(item)) for item in @dataset]"],
    }


def postprocessing(subject: ExportSubject) -> list[dict[str, Any]]:
    """Logits to a uint8 label map on the input's grid, as ``automl-seg predict`` does: labels mapped back
    (nearest), or for a low-resolution or cropping plan the logits mapped back (linearly), then labels;
    then the record's chosen classes keep only their largest connected component."""
    argmax = {"_target_": "AsDiscreted", "keys": "pred", "argmax": True}
    maps_back = subject.plan.maps_back
    invert = {
        "_target_": "Invertd",
        "keys": "pred",
        "transform": "@preprocessing",
        "orig_keys": "image",
        "nearest_interp": not maps_back,
    }
    save = {
        "_target_": "SaveImaged",
        "keys": "pred",
        "output_dir": "@output_dir",
        "output_postfix": "",
        "separate_folder": False,
        "resample": False,
        "output_dtype": "$numpy.uint8",
        "print_log": False,
    }
    steps = [invert, argmax] if maps_back else [argmax, invert]
    if subject.keep_largest:
        steps.append(
            {
                "_target_": "KeepLargestConnectedComponentd",
                "keys": "pred",
                "applied_labels": list(subject.keep_largest),
                "is_onehot": False,
                "independent": True,
                "connectivity": 3,
            }
        )
    return [*steps, save]


def _labels(subject: ExportSubject) -> dict[str, str]:
    return {str(k): v for k, v in sorted(subject.plan.labels.items())}


def network_data_format(subject: ExportSubject, multiple: int) -> dict[str, Any]:
    """Input, output and post-processed output as the specification describes tensors."""
    plan = subject.plan
    labels = _labels(subject)
    window = [f"{multiple}*n"] * len(plan.patch_size)
    ct = plan.normalization == "ct"
    return {
        "inputs": {
            "image": {
                "type": "image",
                "format": "hounsfield" if ct else "magnitude",
                "modality": plan.modality,
                "num_channels": plan.in_channels,
                "spatial_shape": window,
                "dtype": "float32",
                "value_range": list(subject.input_range) if subject.input_range else [],
                "value_range_note": "z-scored per image and channel: no fixed range; these are the min and max "
                "of the preprocessed images the export's parity proof ran on",
                "is_patch_data": True,
                "channel_def": {str(i): plan.modality for i in range(plan.in_channels)},
            }
        },
        "outputs": {
            "pred": {
                "type": "image",
                "format": "logits",
                "num_channels": plan.num_classes,
                "spatial_shape": window,
                "dtype": "float32",
                "value_range": [],
                "value_range_note": "unnormalised class logits (unbounded); label = argmax over channels",
                "is_patch_data": True,
                "channel_def": labels,
            }
        },
        "post_processed_outputs": {
            "pred": {
                "type": "image",
                "format": "segmentation",
                "num_channels": 1,
                "spatial_shape": ["*"] * len(plan.patch_size),
                "dtype": "uint8",
                "value_range": [0, plan.num_classes - 1],
                "is_patch_data": False,
                "channel_def": labels,
            }
        },
    }


def metadata(subject: ExportSubject, multiple: int) -> dict[str, Any]:
    plan = subject.plan
    label_text = ", ".join(f"{k}: {v}" for k, v in _labels(subject).items())
    version = f"{subject.version}.0.0"
    metrics = {key: subject.metrics[key] for key in ("dice_mean", "hd95_mean") if key in subject.metrics}
    return {
        "schema": SCHEMA_URL,
        "version": version,
        "changelog": {version: f"exported from automl-seg registry record {subject.ref}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__,
        "numpy_version": np.__version__,
        "required_packages_version": {"nibabel": nibabel.__version__},
        "supported_apps": {},
        "name": subject.name,
        "task": f"{plan.dataset} segmentation of {label_text}",
        "description": subject.description,
        "authors": "automl-seg (architecture search and training)",
        "copyright": "the owners of the training data and of the registry record",
        "data_source": plan.dataset,
        "data_type": "nibabel",
        "image_classes": f"{plan.in_channels} channel(s) of {plan.modality}, resampled to {list(plan.spacing)} mm "
        f"({plan.orientation}) and normalised ({plan.normalization})",
        "label_classes": label_text,
        "pred_classes": label_text,
        "eval_metrics": metrics,
        "intended_use": "research; not validated for clinical use",
        "references": [
            "He et al., DiNTS: Differentiable Neural Network Topology Search for 3D Medical Image Segmentation, "
            "CVPR 2021",
            "Isensee et al., nnU-Net: a self-configuring method for deep learning-based biomedical image "
            "segmentation, Nature Methods 2021",
        ],
        "network_data_format": network_data_format(subject, multiple),
    }


def check_metadata(meta: dict[str, Any]) -> None:
    """Validate against the local schema; an ``ExportError`` naming the first problem."""
    import jsonschema

    schema = json.loads(LOCAL_SCHEMA.read_text())
    try:
        jsonschema.validate(meta, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "(top level)"
        raise ExportError(f"bundle metadata fails the bundle schema at {where}: {exc.message}") from exc


def model_card(subject: ExportSubject, meta: dict[str, Any]) -> str:
    plan = subject.plan
    return (
        f"{subject.card.rstrip()}\n\n## This MONAI bundle\n\n"
        f"{meta['description']}.\n\n"
        "Run it on a folder of NIfTI images (one label map per image, same name, on the image's grid):\n\n"
        f"```\n{RUN_COMMAND}\n```\n\n"
        "- `configs/inference.json`: load, orientation "
        f"{plan.orientation}, spacing {list(plan.spacing)} mm, normalisation {plan.normalization}; "
        f"`network_def` ({subject.space} space) from MONAI's classes; sliding window {list(plan.patch_size)} "
        f"(overlap {plan.sw_overlap}, gaussian); argmax; inverted onto the input's grid; saved as uint8.\n"
        "- `models/model.pt`: the trained state dict (`network.load_state_dict(torch.load(...))`).\n"
        f"- `configs/metadata.json`: versions, labels ({meta['label_classes']}) and the network's data format.\n"
        f"- Intended use: {meta['intended_use']}.\n"
    )


class MonaiBundleExporter:
    """Writes a MONAI bundle folder for a registered model (``export_model``); the core zips it."""

    name = "monai-bundle"
    suffix = ""
    writes_folder = True

    def export(self, model: nn.Module, example: torch.Tensor, path: Path, options: ExportOptions) -> dict[str, Any]:
        raise ExportError(
            "a MONAI bundle packages a registered model (plan, labels, preprocessing), not a bare network; "
            "use `automl-seg export REF --format monai-bundle`"
        )

    def export_model(
        self, model: nn.Module, example: torch.Tensor, path: Path, options: ExportOptions, subject: ExportSubject
    ) -> dict[str, Any]:
        if options.fp16:
            raise ConfigError("--fp16 is not offered for MONAI bundles (model.pt holds the float32 state dict)")
        if subject.members != 1:
            raise ExportError(
                f"{subject.ref} averages {subject.members} networks (a cross-validated record); a MONAI bundle "
                "holds one network: export it with --format onnx, or export one fold's record as a bundle"
            )
        if subject.network_config is None:
            raise ExportError(
                f"search space '{subject.space}' cannot describe its networks with MONAI's classes "
                "(no monai_network_config); a MONAI bundle needs that"
            )
        network_config = json.loads(json.dumps(subject.network_config))  # exactly what the JSON file will hold
        state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
        from monai.bundle import ConfigParser

        try:
            parsed_network(ConfigParser({"network_def": network_config})).load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ExportError(
                f"the network's state dict does not load into MONAI's {network_config['_target_']} "
                f"({str(exc).splitlines()[0]})"
            ) from exc
        meta = metadata(subject, options.spatial_multiple)
        check_metadata(meta)
        path = Path(path)
        for folder in ("configs", "models", "docs"):
            (path / folder).mkdir(parents=True, exist_ok=True)
        torch.save(state, path / "models" / "model.pt")
        (path / "configs" / "inference.json").write_text(
            json.dumps(inference_config(subject, network_config), indent=2)
        )
        (path / "configs" / "metadata.json").write_text(json.dumps(meta, indent=2))
        (path / "docs" / "README.md").write_text(model_card(subject, meta))
        window = meta["network_data_format"]["inputs"]["image"]["spatial_shape"]
        plan = subject.plan
        return {
            "format": "monai-bundle",
            "exporter": "automl-seg monai-bundle",
            "versions": {"monai": monai.__version__, "torch": torch.__version__},
            "network_def": network_config["_target_"],
            "inputs": [
                {
                    "name": "image",
                    "dtype": "float32",
                    "shape": ["batch", plan.in_channels, *window],
                }
            ],
            "outputs": [
                {
                    "name": "pred",
                    "dtype": "float32",
                    "shape": ["batch", plan.num_classes, *window],
                }
            ],
            "layout": "NCDHW",
            "compute_dtype": "float32",
            "dynamic_spatial": True,
            "spatial_multiple": options.spatial_multiple,
            "files": sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()),
            "metadata_schema": {"named": SCHEMA_URL, "checked_offline_against": LOCAL_SCHEMA.name},
            "run": RUN_COMMAND,
        }

    def load(self, path: Path, providers: list[str] | None = None) -> ModulePredictor:
        """The bundle's ``network_def`` (MONAI's config parser) with ``models/model.pt`` loaded."""
        from monai.bundle import ConfigParser

        device = torch_device(providers, "a MONAI bundle's network")
        parser = ConfigParser()
        parser.read_config(str(Path(path) / "configs" / "inference.json"))
        parser["bundle_root"] = str(path)
        network = parsed_network(parser)
        state = torch.load(Path(path) / "models" / "model.pt", map_location=device, weights_only=True)
        network.load_state_dict(state)
        return ModulePredictor(network.to(device).eval(), device)
