"""The automl-seg architecture registry: typed records and a local store.

It is a store and knows nothing about strategies: the engine and plugins hand it records and files.
"""

from automl_seg_registry.maintenance import Problem, Reindexed
from automl_seg_registry.refs import Ref, parse_ref
from automl_seg_registry.schema import (
    SCHEMA_VERSION,
    ArchitectureRecord,
    Artifact,
    Compute,
    DatasetRef,
    Metrics,
    PhaseCompute,
    SpaceRef,
    StrategyRef,
    load_record,
    migrate_payload,
)
from automl_seg_registry.store import INDEX_ENV, Registry

__all__ = [
    "INDEX_ENV",
    "SCHEMA_VERSION",
    "ArchitectureRecord",
    "Artifact",
    "Compute",
    "DatasetRef",
    "Metrics",
    "PhaseCompute",
    "Problem",
    "Ref",
    "Registry",
    "Reindexed",
    "SpaceRef",
    "StrategyRef",
    "load_record",
    "migrate_payload",
    "parse_ref",
]
