"""The registry's record: data, not code. Everything needed to rebuild, retrain and trust a model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Artifact(_Model):
    """A file stored with a record (weights, ONNX export, report, figure)."""

    name: str = Field(description="unique within the record, e.g. 'weights', 'onnx', 'topology_png'")
    path: str = Field(description="path relative to the record's directory")
    kind: str = Field(description="'weights', 'export', 'report', 'figure', 'history', ...")
    size: int
    sha256: str


class SpaceRef(_Model):
    name: str
    version: str
    args: dict[str, Any] = Field(default_factory=dict, description="constructor arguments")


class StrategyRef(_Model):
    name: str
    settings: dict[str, Any] = Field(default_factory=dict)


class DatasetRef(_Model):
    name: str
    fingerprint_hash: str
    plan: dict[str, Any] = Field(default_factory=dict)


class Metrics(_Model):
    dice_per_class: dict[str, float] = Field(default_factory=dict)
    dice_mean: float | None = None
    hd95_per_class: dict[str, float] = Field(default_factory=dict)
    hd95_mean: float | None = None
    search_time_s: float | None = None
    train_time_s: float | None = None
    peak_memory_mb: float | None = None
    params: int | None = None
    memory: dict[str, float] = Field(
        default_factory=dict, description="e.g. requested / estimated / measured memory of the architecture"
    )
    extra: dict[str, float] = Field(default_factory=dict)


class ArchitectureRecord(_Model):
    """One immutable registry entry. ``version`` is assigned by the store on registration."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: int | None = None
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    space: SpaceRef
    arch: dict[str, Any] = Field(default_factory=dict, description="discrete architecture payload")
    strategy: StrategyRef
    dataset: DatasetRef
    seed: int
    versions: dict[str, str] = Field(default_factory=dict, description="package and plugin versions")
    metrics: Metrics = Field(default_factory=Metrics)
    tags: list[str] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    parent: str | None = Field(default=None, description="ref of the record this one derives from")
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="free-form origin facts, e.g. tuning study and trial"
    )

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"
