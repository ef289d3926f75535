"""A trained automl-seg model as an MLflow pyfunc: ``mlflow.pyfunc.load_model("models:/NAME@best")``.

The model folder holds the registry record and the weights; loading builds the network through the
installed search-space plugin (so automl-seg is a requirement of the model), and ``predict`` runs
sliding-window inference with the record's plan on a preprocessed volume.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
from mlflow.pyfunc import PythonModel  # by name: the type checker reads mlflow.pyfunc as mlflow's LazyLoader

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord

RECORD = "record"
WEIGHTS = "weights"


class SegmentationModel(PythonModel):
    """Input: a preprocessed float32 volume (C, X, Y, Z) or a batch (B, C, X, Y, Z), normalised as the
    record's plan says (what ``automl-seg predict`` does before the network). Output: the label map
    (B, X, Y, Z) as uint8."""

    def load_context(self, context: Any) -> None:
        from automl_seg_registry.schema import load_record

        from automl_seg.api import record_plan, trained_network

        record = load_record(json.loads(Path(context.artifacts[RECORD]).read_text()))
        self.network = trained_network(record, Path(context.artifacts[WEIGHTS]))
        self.plan = record_plan(record)

    # no type hints on the inputs: MLflow would read them as a (list-of-rows) schema
    def predict(self, context, model_input, params=None) -> np.ndarray:  # noqa: ANN001
        import torch

        from automl_seg.api import sliding_window_logits

        image = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        if image.ndim == 4:
            image = image[None]
        logits = sliding_window_logits(self.network, image, self.plan)
        return logits.argmax(1).to(torch.uint8).numpy()


def save_pyfunc(record: ArchitectureRecord, weights: Path, folder: Path) -> Path:
    """Write the MLflow model of ``record`` (with its ``weights`` file) into ``folder``/model."""
    from automl_seg import __version__

    record_file = folder / "record.json"
    record_file.write_text(json.dumps(record.model_dump(mode="json"), indent=2))
    target = folder / "model"
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    channels = int(record.dataset.plan.get("in_channels", 1))
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1, -1))]),
        outputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, -1))]),
    )
    with warnings.catch_warnings():  # advice about type hints and input examples, printed on every save
        warnings.simplefilter("ignore", UserWarning)
        mlflow.pyfunc.save_model(
            path=str(target),
            signature=signature,
            python_model=SegmentationModel(),
            artifacts={RECORD: str(record_file), WEIGHTS: str(weights)},
            pip_requirements=[f"automl-seg=={__version__}"],
            metadata={"automl_seg_ref": record.ref},
        )
    return target
