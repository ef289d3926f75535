"""Networks from registry records: build one through its search space, or load a trained one.

Weights convention (the export plugin relies on it): artifact ``"weights"`` (kind ``"weights"``) is
a file ``weights.pt`` written by ``torch.save(state_dict)`` and read with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from automl_seg.engine.devices import seed_everything
from automl_seg.errors import RegistryError, UserError

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.data.models import Plan
    from automl_seg.interfaces import SearchSpace
    from automl_seg.plugins import PluginHost

WEIGHTS_ARTIFACT = "weights"
WEIGHTS_KIND = "weights"
WEIGHTS_FILE = "weights.pt"


def new_network(space: SearchSpace, args: Mapping[str, Any], arch: Mapping[str, Any], seed: int) -> nn.Module:
    """A freshly initialised network; seeding first makes its initial weights reproducible."""
    seed_everything(seed)
    return space.build_network(args, arch)


def fresh_network(record: ArchitectureRecord, host: PluginHost, seed: int) -> nn.Module:
    """The record's network, freshly initialised from ``seed`` (checked like ``build_network``)."""
    seed_everything(seed)
    return build_network(record, host)


def record_plan(record: ArchitectureRecord) -> Plan:
    """The preprocessing plan stored in ``record``; a clear error for an edited or foreign record."""
    from pydantic import ValidationError

    from automl_seg.data.models import Plan

    try:
        return Plan.model_validate(record.dataset.plan)
    except ValidationError as exc:
        raise RegistryError(
            f"{record.ref}: its stored plan is not valid ({exc.errors()[0]['msg']}); re-run the search that made it"
        ) from exc


def build_network(record: ArchitectureRecord, host: PluginHost) -> nn.Module:
    """The record's network (untrained) through its search space's ``build_network``."""
    space = host.space(record.space.name)
    if str(space.version) != str(record.space.version):
        raise RegistryError(
            f"{record.ref} was made with search space '{space.name}' version {record.space.version}, "
            f"but version {space.version} is installed; install the matching plugin version"
        )
    try:
        return space.build_network(record.space.args, record.arch)
    except Exception as exc:
        raise RegistryError(
            f"{record.ref}: search space '{space.name}' cannot build its architecture ({type(exc).__name__}: {exc})"
        ) from exc


def save_weights(network: nn.Module | Mapping[str, torch.Tensor], path: Path) -> Path:
    state = network.state_dict() if isinstance(network, nn.Module) else network
    torch.save({k: v.detach().cpu() for k, v in state.items()}, path)
    return path


def read_weights(path: Path, ref: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RegistryError(
            f"weights of {ref} ({path}) cannot be read ({type(exc).__name__}); re-train it or remove the record"
        ) from exc
    if not isinstance(state, dict):
        raise RegistryError(f"weights of {ref} ({path}) are not a state dict; re-train it or remove the record")
    return state


def load_trained_model(
    registry: Registry, ref: str, host: PluginHost, device: torch.device | str = "cpu"
) -> tuple[nn.Module, ArchitectureRecord]:
    """The trained network of ``ref`` in eval mode on ``device``, with its record.

    A record without weights, or with missing/corrupt/mismatching weights, is a one-line error."""
    record = registry.get(ref)
    if not any(a.name == WEIGHTS_ARTIFACT for a in record.artifacts):
        raise UserError(
            f"{record.ref} has no trained weights (an architecture only); train it with `automl-seg train {record.ref}`"
        )
    return network_with_weights(registry, record, WEIGHTS_ARTIFACT, host).to(device).eval(), record


def network_with_weights(registry: Registry, record: ArchitectureRecord, artifact: str, host: PluginHost) -> nn.Module:
    """``record``'s network with the weights stored as ``artifact`` (checksum verified); weights that do
    not fit the architecture are a one-line error."""
    return network_from_file(record, registry.artifact_path(record.ref, artifact, verify=True), host, artifact)


def network_from_file(
    record: ArchitectureRecord, path: Path, host: PluginHost, artifact: str = WEIGHTS_ARTIFACT
) -> nn.Module:
    """``record``'s network with the state dict in the file ``path`` (its ``artifact``, as the error names
    it): unreadable weights, or weights that do not fit the architecture, are a one-line error."""
    network = build_network(record, host)
    try:
        network.load_state_dict(read_weights(path, record.ref))
    except RuntimeError as exc:
        raise RegistryError(
            f"weights {artifact} of {record.ref} do not fit its architecture; re-train it or remove the record"
        ) from exc
    return network
