"""The registry's record: data, not code. Everything needed to rebuild, retrain and trust a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automl_seg.errors import RegistryError

#: Layout of a record payload. Bump it when a field changes meaning or moves, and add the step that
#: lifts the previous layout to ``MIGRATIONS`` so records written by older releases keep loading.
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
    split: dict[str, Any] = Field(
        default_factory=dict, description="the data settings that chose the cases (val_fraction, split_seed, max_cases)"
    )


class PhaseCompute(_Model):
    """What one phase (search or retraining) cost: wall seconds and device seconds (on CUDA the wall time
    the GPU was held, on the CPU the process' CPU time over all its threads)."""

    wall_s: float = Field(ge=0)
    device_s: float = Field(ge=0)
    device: str = Field(description="'cpu' or 'cuda'")


class Compute(_Model):
    """Equal-compute accounting: search and retraining kept apart (None: not run, or an older record)."""

    search: PhaseCompute | None = None
    retrain: PhaseCompute | None = None


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
    compute: Compute = Field(default_factory=Compute)


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

    @property
    def stored_version(self) -> int:
        """The version the store assigned (a RegistryError for a record not registered yet): what the
        store's record folders and index rows are keyed by."""
        if self.version is None:
            raise RegistryError(f"record {self.name!r} has no version: it is not registered yet")
        return self.version


def _v0_to_v1(old: dict[str, Any]) -> dict[str, Any]:
    """Lift the pre-release flat layout (schema 0, no ``schema_version`` key) to schema 1.

    Schema 0 kept references flat (``space``/``space_version``/``space_args``, ``strategy``/
    ``strategy_settings``, ``dataset``/``fingerprint``/``plan``), called the architecture ``arch_code``,
    the artifacts ``files``, the versions ``package_versions`` and the per-class Dice ``metrics.dice``.
    """
    new = {key: value for key, value in old.items() if key not in _V0_MOVED}
    new["space"] = {
        "name": old["space"],
        "version": str(old.get("space_version", "0")),
        "args": old.get("space_args", {}),
    }
    new["strategy"] = {"name": old["strategy"], "settings": old.get("strategy_settings", {})}
    new["dataset"] = {
        "name": old["dataset"],
        "fingerprint_hash": old.get("fingerprint", ""),
        "plan": old.get("plan", {}),
    }
    new["arch"] = old.get("arch_code", old.get("arch", {}))
    new["artifacts"] = old.get("files", [])
    new["versions"] = old.get("package_versions", {})
    metrics = dict(old.get("metrics", {}))
    if "dice" in metrics:
        metrics["dice_per_class"] = metrics.pop("dice")
    new["metrics"] = metrics
    new["schema_version"] = 1
    return new


_V0_MOVED = {
    "space_version", "space_args", "strategy_settings", "fingerprint", "plan", "arch_code", "arch", "files",
    "package_versions", "metrics", "schema_version",
}  # fmt: skip

#: ``MIGRATIONS[n]`` turns a schema-``n`` payload into a schema-``n + 1`` payload.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


def migrate_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A stored payload of any known schema version, lifted step by step to ``SCHEMA_VERSION``."""
    data = dict(payload)
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or version < 0:
        raise RegistryError(f"record {data.get('name', '?')!r} has an invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise RegistryError(
            f"record {data.get('name', '?')!r} uses record schema {version}, newer than this automl-seg "
            f"understands ({SCHEMA_VERSION}); upgrade automl-seg"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


def load_record(payload: Mapping[str, Any]) -> ArchitectureRecord:
    """Validate a stored payload (any known schema version) into the current ``ArchitectureRecord``."""
    try:
        return ArchitectureRecord.model_validate(migrate_payload(payload))
    except (KeyError, TypeError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(
            f"record {payload.get('name', '?')!r} cannot be read ({first}); restore it or remove it"
        ) from exc
