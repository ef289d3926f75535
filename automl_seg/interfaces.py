"""What plugins provide (search spaces, search strategies, exporters) and what they are handed.

The providers are structural protocols: a plugin object need not inherit from anything, it only
needs these attributes and methods. The core calls them (the engine, export, tuning and
``plugins verify``), always through the plugin host. Optional abilities of a space are small
protocols of their own (``SupernetSpace``, ``SamplingSpace``, ``MemoryEstimatingSpace``): test
them with ``isinstance``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.config import Budget as Budget  # re-exported: plugins name budgets from here

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from automl_seg.data.models import Plan
    from automl_seg.data.prepared import PreparedData
    from automl_seg.engine.distributed import Distributed


#: What a run is (``RunInfo.kind``): ``"search"`` (search, then retrain unless ``--no-train``),
#: ``"train"`` (``automl-seg train``: retrain a registered architecture), ``"tune"`` (a study).
RunKind = Literal["search", "train", "tune"]
#: The phase an ``on_epoch_ended`` call reports: the strategy's search epochs, or the retraining's.
Phase = Literal["search", "train"]


@dataclass(frozen=True)
class RunInfo:
    """Identity of one run, handed to every lifecycle hook of that run.

    ``run_id`` is unique to this run (two runs of the same settings differ); ``settings_key`` is the
    same for runs of the same settings (it names the work folder that ``--resume`` continues from).
    The retraining inside ``search`` belongs to the search run: it reports as the same ``RunInfo``
    with ``phase="train"``. ``parent`` is the ``run_id`` of the run this one belongs to (a tuning
    trial's search names its study's run), so observers can nest runs. ``settings`` are the run's
    settings as JSON-able sections (``run``, ``data``, ``train``, ``strategy``, ...), for observers
    that log parameters."""

    run_id: str
    kind: RunKind | str
    dataset: str | None = None
    strategy: str | None = None
    workdir: Path | None = None
    settings_key: str | None = None
    parent: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


def new_run_id(kind: str) -> str:
    """A run id no other run has: the kind, the UTC start time and a random suffix."""
    import uuid
    from datetime import UTC, datetime

    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


class TunableParameter(BaseModel):
    """A hyper-parameter a plugin lets Optuna tune, with its range."""

    model_config = ConfigDict(extra="forbid")

    name: str
    target: Literal["strategy", "space", "train", "data"] = Field(
        description="where the value goes: strategy settings, search-space args, training or data settings"
    )
    kind: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    help: str = ""


@runtime_checkable
class SearchSpace(Protocol):
    """A family of networks. ``build_network`` turns a discrete architecture into an nn.Module.

    Optional abilities, offered where they make sense, are the protocols below
    (``isinstance(space, SamplingSpace)``): ``SupernetSpace``, ``SamplingSpace``,
    ``MemoryEstimatingSpace``. Also optional: ``monai_network_config(args, arch) -> dict``, a MONAI
    bundle config item (``{"_target_": ...}``, JSON-serialisable) that builds the same network from
    MONAI's own classes, into which the state dict of ``build_network``'s network loads (what a
    MONAI bundle export writes as ``network_def``).

    Optional attribute ``budgets``: the names of the budgets ``default_args`` has presets for (a
    space without it accepts every budget); a run refuses a budget the space does not declare."""

    name: str
    version: str

    def default_args(self, plan: Plan, budget: Budget) -> dict[str, Any]:
        """Constructor arguments (channels, depths, ...) for a plan; JSON-serialisable."""
        ...

    def build_network(self, args: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
        """The discrete network: input (B, in_channels, *patch) -> logits (B, num_classes, *patch).

        Deep supervision, where the space offers it: in training mode the network may return
        (B, H, num_classes, *patch), H outputs with the full-resolution one first and coarser decoder
        levels' after it (MONAI ``DynUNet(deep_supervision=True)``); the engine's loss weights output k
        by 2**-k. In eval mode it returns the full-resolution logits alone."""
        ...


@runtime_checkable
class SupernetSpace(Protocol):
    """A space that can build every candidate at once (what gradient-based strategies search)."""

    def build_supernet(self, args: Mapping[str, Any]) -> nn.Module:
        """The supernet of ``args``, with its architecture parameters."""
        ...


@runtime_checkable
class SamplingSpace(Protocol):
    """A space of several architectures that can draw one at random (random search, the kit's checks)."""

    def sample_arch(self, args: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
        """A random member as a JSON-serialisable ``arch``; the same ``rng`` state gives the same one."""
        ...


@runtime_checkable
class MemoryEstimatingSpace(Protocol):
    """A space that estimates an architecture's memory without building it."""

    def estimate_memory(self, args: Mapping[str, Any], arch: Mapping[str, Any], plan: Plan) -> dict[str, float]:
        """``{"fraction": share of the space's largest member, "mb": megabytes at the plan's batch and patch}``."""
        ...


@dataclass
class SearchContext:
    """Everything a strategy's ``search`` gets from the engine.

    ``data`` is the prepared dataset (``automl_seg.api.PreparedData``: ``plan``, ``train_cases``,
    ``val_cases``, ``train_loader(...)``, ``val_loader(...)``; see docs/writing-plugins.md);
    ``settings`` is what the strategy's own ``settings(budget, overrides)`` returned; ``budget`` the
    run's budget preset. Call ``epoch_ended(epoch, metrics)`` after every epoch (1-based, finite
    float metrics): observers see it as ``on_epoch_ended(phase="search")``, and an observer may end
    the run there by raising ``RunStopped`` (let it through)."""

    space: SearchSpace
    space_args: dict[str, Any]
    data: PreparedData
    settings: BaseModel
    seed: int
    device: torch.device
    workdir: Path
    resume: bool
    run: RunInfo
    epoch_ended: Callable[[int, Mapping[str, float]], None] = lambda epoch, metrics: None
    #: show progress bars (the run's ``--progress/--no-progress``)
    progress: bool = True
    #: the run's budget preset (``--budget``)
    budget: Budget = "quick"
    #: the DDP job this process is a rank of (a world of one by default): shard the data, wrap the
    #: model, average gradients, and let rank 0 alone write (``automl_seg.engine.distributed``)
    dist: Distributed = field(default_factory=lambda: _single_process())


class MemoryFigures(BaseModel):
    """Memory of a found architecture; each figure is optional. Fractions are shares of the space's
    largest member (the scale of a fractional memory budget), ``*_mb`` megabytes."""

    model_config = ConfigDict(extra="forbid")

    requested: float | None = Field(default=None, description="the budget, as a fraction")
    estimated: float | None = Field(default=None, description="the architecture's estimate, as a fraction")
    requested_mb: float | None = Field(default=None, description="the budget on the estimate's megabyte scale")
    estimated_mb: float | None = Field(default=None, description="the architecture's estimate in MB")
    full_estimated_mb: float | None = Field(default=None, description="the largest member's estimate in MB")
    budget_mb: float | None = Field(default=None, description="a budget given as training memory (e.g. 900MB)")
    predicted_mb: float | None = Field(default=None, description="predicted training memory")
    measured_mb: float | None = Field(default=None, description="measured training memory")

    @classmethod
    def from_record(cls, memory: Mapping[str, float]) -> MemoryFigures:
        """The figures of a registry record's ``metrics.memory`` (keys this model does not know are left out)."""
        return cls.model_validate({k: v for k, v in memory.items() if k in cls.model_fields})

    def figures(self) -> dict[str, float]:
        """The figures given, as the registry record's ``metrics.memory`` stores them."""
        return {k: float(v) for k, v in self.model_dump(exclude_none=True).items()}


#: the ``metrics`` key prefix plugins written for API 1 used for memory figures
LEGACY_MEMORY_PREFIX = "memory_"


@dataclass
class SearchOutcome:
    """What a strategy returns: a discrete architecture and how it was found.

    ``metrics`` are finite floats (search score, trials, ...); memory figures go in ``memory``. For
    plugins written for API 1, ``metrics`` keys ``memory_<figure>`` naming a ``MemoryFigures`` field
    are moved there."""

    arch: dict[str, Any]
    space_args: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    memory: MemoryFigures = field(default_factory=MemoryFigures)

    def __post_init__(self) -> None:
        legacy = [key for key in self.metrics if key.startswith(LEGACY_MEMORY_PREFIX)]
        moved = {
            key.removeprefix(LEGACY_MEMORY_PREFIX): self.metrics.pop(key)
            for key in legacy
            if key.removeprefix(LEGACY_MEMORY_PREFIX) in MemoryFigures.model_fields
        }
        if moved:
            self.memory = MemoryFigures.model_validate({**self.memory.model_dump(exclude_none=True), **moved})


@runtime_checkable
class SearchStrategy(Protocol):
    """Finds an architecture in a search space.

    Optional attribute ``budgets``: the names of the budgets ``settings`` has presets for (a strategy
    without it accepts every budget); a run refuses a budget the strategy does not declare."""

    name: str
    space: str  # name of the search space this strategy searches

    def settings(self, budget: Budget, overrides: Mapping[str, Any]) -> BaseModel:
        """The strategy's validated settings: the budget's preset with ``overrides`` applied.

        Raise ``ConfigError`` (or let pydantic raise) on unknown keys or invalid values."""
        ...

    def search(self, ctx: SearchContext) -> SearchOutcome: ...


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opset: int | None = None
    fp16: bool = False
    dynamic_spatial: bool = True
    spatial_multiple: int = Field(default=16, gt=0, description="spatial sizes must be multiples of this")
    onnx_exporter: Literal["auto", "torchscript", "dynamo"] = Field(
        default="auto",
        description="torch's ONNX exporter: 'auto' tries the TorchScript-based one, then dynamo",
    )


class Predictor(Protocol):
    """A loaded artefact: float32 array (B, C, *spatial) in, logits out."""

    providers: list[str]

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ExportSubject:
    """The registered model behind a network: what exporters of whole models (MONAI bundles) describe
    besides the network itself. The core builds it from the record; see ``Exporter.export_model``."""

    ref: str
    name: str
    version: int
    plan: Plan
    space: str
    space_version: str
    #: MONAI bundle config item building the network from MONAI's classes (the space's
    #: ``monai_network_config``); None when the space offers none
    network_config: dict[str, Any] | None
    #: the deterministic preprocessing of a file on key ``"image"`` as MONAI bundle config items
    preprocessing: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    #: networks whose softmax the model averages (a cross-validated record's folds); 1 for one network
    members: int = 1
    #: label values whose largest connected component alone is kept after the argmax (26-connectivity)
    keep_largest: list[int] = field(default_factory=list)
    #: (min, max) of the preprocessed images the parity proof runs on: z-scored inputs have no fixed range
    input_range: tuple[float, float] | None = None
    #: the record's model card (Markdown)
    card: str = ""
    description: str = ""


@runtime_checkable
class Exporter(Protocol):
    """Turns a trained network into a deployable artefact and loads it back for parity checks.

    Optional, for formats that package a whole registered model rather than a network (MONAI
    bundles): ``export_model(model, example, path, options, subject) -> facts``, called instead of
    ``export`` with the record's ``ExportSubject``; and the attribute ``writes_folder = True`` when
    the artefact is a folder (the registry stores it zipped, ``--output`` gets the folder and the zip)."""

    name: str
    suffix: str  # file suffix, e.g. ".onnx" ("" for a folder)

    def export(self, model: nn.Module, example: torch.Tensor, path: Path, options: ExportOptions) -> dict[str, Any]:
        """Write the artefact to ``path``; return facts for the sidecar (opset, axes, ...)."""
        ...

    def load(self, path: Path, providers: list[str] | None = None) -> Predictor: ...


def _single_process() -> Distributed:
    from automl_seg.engine.distributed import Distributed

    return Distributed()
