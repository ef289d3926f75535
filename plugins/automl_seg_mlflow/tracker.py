"""The MLflow side of the observer: one client, the automl-seg runs it follows, what each hook logs."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord

    from automl_seg.interfaces import RunInfo

RUN_TAG = "automl_seg.run_id"
REF_TAG = "automl_seg.ref"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
#: the end hook's status -> MLflow's
STATUS = {"finished": "FINISHED", "failed": "FAILED", "stopped": "KILLED", "interrupted": "KILLED"}
#: registry aliases MLflow reserves (its own ``models:/name/latest``)
RESERVED_ALIASES = {"latest"}
WEIGHTS = "weights"
MAX_PARAM_CHARS = 6000
BATCH = 100
PROBE_TIMEOUT_S = 5.0


class Tracker:
    """Maps automl-seg runs (by ``run_id``) to MLflow runs and logs into them."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.runs: dict[str, str] = {}

    @classmethod
    def connect(cls, uri: str) -> Tracker:
        """A tracker for ``uri``; an HTTP server that does not answer is an error at once (MLflow's own
        client would retry for minutes)."""
        _probe(uri)
        return cls(MlflowClient(tracking_uri=uri))

    # -- hooks ----------------------------------------------------------------------------------

    def start(self, run: RunInfo) -> None:
        experiment = self._experiment(run.dataset)
        tags = {RUN_TAG: run.run_id, "automl_seg.kind": run.kind}
        tags.update({f"automl_seg.{k}": v for k, v in (("dataset", run.dataset), ("strategy", run.strategy)) if v})
        parent = self._find(run.parent, experiment) if run.parent else None
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        name = " ".join(part for part in (run.kind, run.strategy, run.dataset) if part)
        mlflow_run = self.client.create_run(experiment, run_name=name, tags=tags)
        self.runs[run.run_id] = mlflow_run.info.run_id
        params = [Param(key, _param_value(value)) for key, value in flatten(run.settings).items()]
        for chunk in batches(params):
            self.client.log_batch(mlflow_run.info.run_id, params=chunk)

    def epoch(self, run: RunInfo, phase: str, epoch: int, metrics: Mapping[str, float]) -> None:
        run_id = self.runs.get(run.run_id)
        if run_id is not None:
            now = _now_ms()
            logged = [Metric(f"{phase}/{key}", float(value), now, epoch) for key, value in metrics.items()]
            self.client.log_batch(run_id, metrics=logged)

    def registered(
        self, run: RunInfo, record: ArchitectureRecord, files: Mapping[str, Path], aliases: list[str]
    ) -> None:
        run_id = self.runs.get(run.run_id)
        if run_id is None:
            return
        folder = f"{record.name}/v{record.version}"
        kinds = {artifact.name: artifact.kind for artifact in record.artifacts}
        for name, path in files.items():
            if kinds.get(name) != WEIGHTS:
                self.client.log_artifact(run_id, str(path), artifact_path=folder)
        self.client.log_dict(run_id, record.model_dump(mode="json"), f"{folder}/record.json")
        now = _now_ms()
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in final_metrics(record).items()])
        trained = any(kind == WEIGHTS for kind in kinds.values())
        self.client.set_tag(run_id, "automl_seg.trained" if trained else "automl_seg.architecture", record.ref)
        if trained and WEIGHTS in files:
            self._register_model(run_id, record, files[WEIGHTS], folder, aliases)

    def ended(self, run: RunInfo, result: Mapping[str, Any]) -> None:
        run_id = self.runs.pop(run.run_id, None)
        if run_id is None:
            return
        if result.get("error"):
            self.client.set_tag(run_id, "automl_seg.error", str(result["error"])[:MAX_PARAM_CHARS])
        if result.get("best"):
            self.client.set_tag(run_id, "automl_seg.best", str(result["best"]))
        self.client.set_terminated(run_id, STATUS.get(str(result.get("status")), "FINISHED"))

    # -- pieces ---------------------------------------------------------------------------------

    def _experiment(self, dataset: str | None) -> str:
        """The experiment's id: ``$MLFLOW_EXPERIMENT_NAME``, else one per dataset (created when missing)."""
        name = os.environ.get(EXPERIMENT_ENV) or f"automl-seg-{dataset or 'runs'}"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except MlflowException:  # another worker created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _find(self, automl_run: str, experiment: str) -> str | None:
        """The MLflow run following ``automl_run``: this process's, else the newest running one in MLflow
        (a tuning trial's study was started by another plugin host)."""
        if automl_run in self.runs:
            return self.runs[automl_run]
        quoted = automl_run.replace("'", "\\'")
        found = self.client.search_runs(
            [experiment],
            filter_string=f"tags.`{RUN_TAG}` = '{quoted}' and attributes.status = 'RUNNING'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return found[0].info.run_id if found else None

    def _register_model(
        self, run_id: str, record: ArchitectureRecord, weights: Path, folder: str, aliases: list[str]
    ) -> None:
        """The trained model as a pyfunc in the run, and as a version of ``record.name`` in the Model
        Registry tagged with its ref, holding the record's aliases."""
        from automl_seg_mlflow.pyfunc_model import save_pyfunc

        with tempfile.TemporaryDirectory(prefix="automl-seg-mlflow-") as tmp:
            model = save_pyfunc(record, weights, Path(tmp))
            self.client.log_artifacts(run_id, str(model), artifact_path=f"{folder}/model")
        try:
            self.client.create_registered_model(record.name, tags={"automl_seg.dataset": record.dataset.name})
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(
            record.name,
            source=f"runs:/{run_id}/{folder}/model",
            run_id=run_id,
            tags={REF_TAG: record.ref},
            description=_describe(record),
        )
        for alias in aliases:
            if alias not in RESERVED_ALIASES:
                self.client.set_registered_model_alias(record.name, alias, version.version)


def final_metrics(record: ArchitectureRecord) -> dict[str, float]:
    """A record's scores and costs as flat MLflow metric names (finite values only)."""
    m = record.metrics
    values: dict[str, float | int | None] = {
        "dice_mean": m.dice_mean,
        "hd95_mean": m.hd95_mean,
        "peak_memory_mb": m.peak_memory_mb,
        "params": m.params,
        "search_time_s": m.search_time_s,
        "train_time_s": m.train_time_s,
        **{f"dice/{name}": value for name, value in m.dice_per_class.items()},
        **{f"hd95/{name}": value for name, value in m.hd95_per_class.items()},
        **{f"memory/{name}": value for name, value in m.memory.items()},
    }
    return {key: float(value) for key, value in values.items() if value is not None and math.isfinite(value)}


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (``train.epochs``); lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def _describe(record: ArchitectureRecord) -> str:
    dice = f", validation Dice {record.metrics.dice_mean:.4f}" if record.metrics.dice_mean is not None else ""
    return f"automl-seg {record.ref}: {record.space.name} by {record.strategy.name} on {record.dataset.name}{dice}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _probe(uri: str) -> None:
    """Raise ``ConnectionError`` when ``uri`` is an HTTP(S) server that does not answer."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S).close()  # noqa: S310
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        server = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        raise ConnectionError(f"no answer from {server} ({reason})") from exc


def batches(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
