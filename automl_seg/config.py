"""Typed run settings, read from a YAML/TOML file with CLI flags on top.

A config file has one section per model below (``data``, ``train``, ``search``, ``strategy``, ...).
Flags given on the command line override the file; anything unknown or invalid is one clear line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from automl_seg.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Device = Literal["auto", "cpu", "cuda"]
#: A budget is a preset's name. The set is open: the engine declares the budgets of its training presets
#: and every strategy and space the budgets of its own presets (``automl_seg.engine.budgets`` checks a
#: run's budget against all of them).
BUDGET_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
Budget = Annotated[str, Field(pattern=BUDGET_PATTERN)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]  #: what numpy, torch and Optuna all accept


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _spatial_axes(axes: tuple[int, ...]) -> tuple[int, ...]:
    if any(axis not in (0, 1, 2) for axis in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"mirror_axes must be distinct axes among 0, 1, 2 (x, y, z), not {list(axes)}")
    return tuple(sorted(axes))


#: spatial axes to flip along (a plan's, or a data setting overriding it): distinct, among 0-2, sorted
MirrorAxes = Annotated[tuple[int, ...], AfterValidator(_spatial_axes)]


class DataSettings(Settings):
    """Where a dataset is and how it is split."""

    dataset: str = "Task04_Hippocampus"
    data_root: Path | None = None
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    split_seed: Seed = 0
    holdout_fraction: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="cases set aside before the train/validation split (seeded by split_seed): no run, plan or "
        "fingerprint sees them; `compare` scores every strategy on them",
    )
    max_cases: int | None = Field(default=None, gt=0, description="use only the first N cases (smoke runs)")
    patch_size: tuple[PositiveInt, PositiveInt, PositiveInt] | None = Field(
        default=None, description="override the plan's patch"
    )
    mirror_axes: MirrorAxes | None = Field(
        default=None,
        description="override the plan's mirror axes (training flips, --tta): [0, 1, 2] = every axis, "
        "nnU-Net's default; [] = none",
    )


SPLIT_KEYS = ("val_fraction", "split_seed", "max_cases", "holdout_fraction")  #: the DataSettings that choose the cases


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or TOML config file into a dict (one clear error if that fails)."""
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {problem}; pass an existing .yaml or .toml file")
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__  # YAML's line and column included, on one line
        raise ConfigError(f"config file {path} cannot be parsed: {reason}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, not {type(data).__name__}")
    return data


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """pydantic's error as one line: ``source: section.key: message (got value)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
        got = "" if err["type"] == "extra_forbidden" else f" (got {err.get('input')!r})"
        parts.append(f"{loc}: {msg}{got}")
    return f"invalid settings in {source}: " + "; ".join(parts)


def build_settings(
    model: type[M],
    file_section: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    source: str = "settings",
    base: Mapping[str, Any] | None = None,
) -> M:
    """Validate ``base`` (e.g. a budget preset) < file section < CLI overrides (None = not given)."""
    merged: dict[str, Any] = dict(base or {})
    merged.update(file_section or {})
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from exc


def section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One section of a parsed config file (empty when absent)."""
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config section '{name}' must be a mapping, not {type(value).__name__}")
    return value


def check_sections(config: Mapping[str, Any], known: set[str], path: Path) -> None:
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown section(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
