"""The study report: typed records whose ``--json`` keys stay put, read back, and refuse unknown keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from automl_seg.tune.report import StudyReport, TrialRow
from automl_seg.tune.run import TuneRequest, TuneResult, run_tune
from automl_seg.tune.storage import open_storage
from automl_seg.tune.study import load_study

from .conftest import FakeRunner

STUDY_KEYS = {"study", "storage", "pareto_png", "identity", "directions", "counts", "best", "importances", "trials"}
ROW_KEYS = {"number", "state", "values", "dice", "memory_mb", "params", "applied", "last_epoch", "duration_s", "ref",
            "reason"}  # fmt: skip
ROW = dict(number=0, state="COMPLETE", values=[0.9, 120.0], dice=0.9, memory_mb=120.0, params={"alpha": 0.5},
           applied={"strategy": {"alpha": 0.5}}, last_epoch=None, duration_s=1.5, ref=None, reason=None)  # fmt: skip
REPORT = dict(study="s", storage="sqlite://", pareto_png=None, identity=None, directions=["maximize"],
              counts={"COMPLETE": 1}, best=[], importances={}, trials=[ROW])  # fmt: skip


def test_json_answers_keep_their_keys_and_read_back(tmp_path: Path, host) -> None:
    request = TuneRequest(strategy="fake", dataset="D", trials=3, study="s", registry=tmp_path, sampler="random",
                          pruner="none", objective="pareto")  # fmt: skip
    result = run_tune(request, host, FakeRunner(fail_on=(1,)))
    data = json.loads(json.dumps(result.model_dump(mode="json")))  # what `tune --json` prints
    assert set(data) == STUDY_KEYS | {"best_ref"}
    assert data["best"] and all(set(row) == ROW_KEYS for row in data["trials"] + data["best"])
    assert data["pareto_png"] == str(result.pareto_png)
    assert data["identity"] == {"strategy": "fake", "space": "fake", "dataset": "D", "objective": "pareto"}
    assert [row["state"] for row in data["trials"]] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert TuneResult.model_validate(data) == result
    shown = StudyReport.of(load_study(open_storage(result.storage), "s"), result.storage)  # `tune show`
    assert set(shown.model_dump(mode="json")) == STUDY_KEYS


def test_records_refuse_unknown_keys_and_values() -> None:
    TrialRow.model_validate(ROW)
    with pytest.raises(ValidationError, match="note"):
        TrialRow.model_validate({**ROW, "note": "x"})
    with pytest.raises(ValidationError, match="state"):
        TrialRow.model_validate({**ROW, "state": "DONE"})
    with pytest.raises(ValidationError, match="applied"):
        TrialRow.model_validate({**ROW, "applied": {"model": {}}})
    StudyReport.model_validate(REPORT)
    with pytest.raises(ValidationError, match="summary"):
        StudyReport.model_validate({**REPORT, "summary": {}})
    with pytest.raises(ValidationError, match="trials.0.note"):
        StudyReport.model_validate({**REPORT, "trials": [{**ROW, "note": "x"}]})
    with pytest.raises(ValidationError, match="specs"):
        TuneResult.model_validate({**REPORT, "best_ref": None, "specs": []})


def test_a_study_automl_seg_did_not_create_is_shown_without_its_user_attributes() -> None:
    """Another tool's study may set user attributes named like ours to anything: `tune show` still works."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="foreign", directions=["maximize"])
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("dice", "n/a")
    trial.set_user_attr("values", [1, 2])
    study.tell(trial, 0.5)
    report = StudyReport.of(study, "sqlite://")
    assert report.identity is None and report.best == []
    assert report.trials[0].dice is None and report.trials[0].applied == {} and report.trials[0].values == [0.5]
