"""Memory-budget parsing and the strategy's settings: every bad value is one clear ConfigError."""

from __future__ import annotations

import pytest
from automl_seg_dints.budget import parse_memory_budget
from automl_seg_dints.calibrate import MemoryCalibration
from automl_seg_dints.strategy import DintsStrategy

from automl_seg.errors import ConfigError


@pytest.mark.parametrize("value", [0, 1.5, -1, "10XB", "0", "-5MB", "0MB", True])
def test_bad_budgets(value: object) -> None:
    with pytest.raises(ConfigError, match="memory budget") as info:
        parse_memory_budget(value)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_good_budgets() -> None:
    assert parse_memory_budget(0.5).fraction == 0.5
    assert parse_memory_budget("1").fraction == 1.0
    assert parse_memory_budget("900MB").megabytes == 900
    assert parse_memory_budget("1.5 GB").megabytes == 1536


def test_budget_below_smallest_architecture_names_the_minimum(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match=r"smallest architecture .*0\.05 of the full supernet = 50MB estimated"):
        parse_memory_budget("20MB").resolve(reference_full_mb=1000.0, minimum_fraction=0.05)
    assert parse_memory_budget("500MB").resolve(reference_full_mb=1000.0, minimum_fraction=0.05) == 0.5
    assert "above" not in caplog.text
    assert parse_memory_budget("5GB").resolve(reference_full_mb=1000.0, minimum_fraction=0.05) == 1.0
    assert "5120MB is above the full supernet's 1000MB estimated" in caplog.text


def test_megabytes_are_training_memory_through_a_calibration(caplog: pytest.LogCaptureFixture) -> None:
    # measured = 100 + 2 * estimated (sparsest 10 -> 120 MB, densest 510 -> 1120 MB)
    calibration = MemoryCalibration(estimated_mb=(10.0, 510.0), measured_mb=(120.0, 1120.0))
    assert calibration.usable
    assert calibration.measured_for(250.0) == pytest.approx(600.0)
    assert calibration.estimated_for(600.0) == pytest.approx(250.0)
    assert parse_memory_budget("600MB").resolve(500.0, 0.05, calibration) == pytest.approx(0.5)
    assert parse_memory_budget(0.5).resolve(500.0, 0.05, calibration) == 0.5  # fractions do not change
    with pytest.raises(ConfigError, match=r"0\.05 of the full supernet = 150MB of training memory"):
        parse_memory_budget("140MB").resolve(500.0, 0.05, calibration)
    parse_memory_budget("2000MB").resolve(500.0, 0.05, calibration)
    assert "2000MB is above the full supernet's 1100MB of training memory" in caplog.text


def test_a_calibration_whose_memory_does_not_grow_is_not_usable() -> None:
    assert not MemoryCalibration(estimated_mb=(10.0, 510.0), measured_mb=(120.0, 120.0)).usable
    assert not MemoryCalibration(estimated_mb=(10.0, 10.0), measured_mb=(120.0, 300.0)).usable


def test_settings_presets_and_errors() -> None:
    strategy = DintsStrategy()
    quick, full = strategy.settings("quick", {}), strategy.settings("full", {})
    assert quick.epochs < full.epochs
    assert strategy.settings("quick", {"memory_budget": "900MB", "epochs": 3}).budget.megabytes == 900
    for overrides, message in [
        ({"epochs": 0}, "epochs"),
        ({"bogus": 1}, "unknown setting"),
        ({"memory_budget": 1.5}, "memory budget"),
        ({"epochs": 3, "warmup_epochs": 3}, "warmup_epochs"),
    ]:
        with pytest.raises(ConfigError, match=message):
            strategy.settings("quick", overrides)
    with pytest.raises(ConfigError, match="unknown budget"):
        strategy.settings("huge", {})  # type: ignore[arg-type]
