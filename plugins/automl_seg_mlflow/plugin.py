"""Entry point of the MLflow observer: follows runs through the lifecycle hooks alone.

Active when ``MLFLOW_TRACKING_URI`` is set (``--mlflow URI`` sets it for one command). A search,
training or tuning run becomes an MLflow run (a tuning trial's run nested under its study's), with
the settings as parameters, every epoch's metrics, the registered records' figures, histories and
final metrics, and each trained model registered in MLflow's Model Registry as a pyfunc.

Tracking never stops a run: the first MLflow failure (an unreachable server, a bad URI) is one
warning, and the observer stays quiet for the rest of the process's run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_seg.hookspecs import hookimpl

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord

    from automl_seg.interfaces import RunInfo
    from automl_seg_mlflow.tracker import Tracker

log = logging.getLogger(__name__)

URI_ENV = "MLFLOW_TRACKING_URI"


class MlflowObserver:
    """One per plugin host (the entry point names the class): maps automl-seg runs to MLflow runs."""

    AUTOML_SEG_API = 2

    def __init__(self) -> None:
        self._tracker: Tracker | None = None
        self._off = False

    def _call(self, action: Callable[[Tracker], None]) -> None:
        """Run ``action`` on the tracker, turning the first failure into one warning and silence after."""
        uri = os.environ.get(URI_ENV)
        if self._off or not uri:
            return
        try:
            if self._tracker is None:
                from automl_seg_mlflow.tracker import Tracker

                self._tracker = Tracker.connect(uri)
            action(self._tracker)
        except ImportError:
            self._off = True
            log.warning("%s is set but MLflow is not installed: pip install 'automl-seg[mlflow]'", URI_ENV)
        except Exception as exc:
            self._off = True
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("MLflow tracking at %s failed (%s): the run goes on without MLflow", _safe(uri), reason)

    @hookimpl
    def on_run_started(self, run: RunInfo) -> None:
        self._call(lambda tracker: tracker.start(run))

    @hookimpl
    def on_epoch_ended(self, run: RunInfo, phase: str, epoch: int, metrics: Mapping[str, float]) -> None:
        self._call(lambda tracker: tracker.epoch(run, phase, epoch, metrics))

    @hookimpl
    def on_model_registered(
        self, run: RunInfo, record: ArchitectureRecord, files: Mapping[str, Path], aliases: list[str]
    ) -> None:
        self._call(lambda tracker: tracker.registered(run, record, files, aliases))

    @hookimpl
    def on_run_ended(self, run: RunInfo, result: Mapping[str, Any]) -> None:
        self._call(lambda tracker: tracker.ended(run, result))


def _safe(uri: str) -> str:
    """``uri`` without a password."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@")
