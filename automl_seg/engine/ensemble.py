"""Models made of several networks: a cross-validated record's folds, or an explicit ensemble of records.

One trained record with ``weights`` is one network, and predicts logits as always. A cross-validated
record (its fold weights) or several records (``--ensemble A,B``) become one ``SoftmaxAverage``
module: the mean of the members' softmax, nnU-Net's ensembling; its argmax is the ensemble's label
map, test-time mirroring goes on top, and it exports as one graph. Members must agree on what their
inputs and outputs mean: the same dataset, labels, plan geometry (patch, spacing, orientation,
channels) and normalisation; otherwise one error line names the first mismatch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from automl_seg.engine.folds import FOLDS_KEY
from automl_seg.engine.model import WEIGHTS_ARTIFACT, network_with_weights, record_plan
from automl_seg.engine.postprocess import PROVENANCE_KEY, Postprocessing
from automl_seg.errors import ConfigError, UserError

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.data.models import Plan
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)

#: what members must share: (what the message calls it, how to read it from a record and its plan)
PLAN_FIELDS = {
    "labels": "labels",
    "patch size": "patch_size",
    "spacing": "spacing",
    "orientation": "orientation",
    "input channels": "in_channels",
    "normalisation": "normalization",
    "CT window": "ct_clip",
}


class SoftmaxAverage(nn.Module):
    """The mean of the members' softmax over classes: (B, C, *patch) -> (B, classes, *patch) probabilities."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.softmax(self.members[0](x).float(), dim=1)
        for member in self.members[1:]:
            total = total + torch.softmax(member(x).float(), dim=1)
        return total / len(self.members)


@dataclass
class LoadedModel:
    """A model ready to predict: its network (logits, or averaged probabilities for several members),
    the shared plan, the records it came from and the postprocessing to apply to its label maps."""

    network: nn.Module
    plan: Plan
    records: list[ArchitectureRecord]
    postprocessing: Postprocessing
    members: int


def weight_artifacts(record: ArchitectureRecord) -> list[str]:
    """The record's weight artifacts: its fold weights when cross-validated, else ``weights``."""
    folds = record.provenance.get(FOLDS_KEY)
    if folds:
        return [f"weights_fold{k}" for k in range(int(folds["count"]))]
    if any(a.name == WEIGHTS_ARTIFACT for a in record.artifacts):
        return [WEIGHTS_ARTIFACT]
    raise UserError(
        f"{record.ref} has no trained weights (an architecture only); train it with `automl-seg train {record.ref}`"
    )


def check_members(records: Sequence[ArchitectureRecord]) -> Plan:
    """The members' shared plan; one ``ConfigError`` naming the first mismatch otherwise."""
    first, plan = records[0], record_plan(records[0])
    for other in records[1:]:
        other_plan = record_plan(other)
        if other.dataset.name != first.dataset.name:
            raise ConfigError(
                f"ensemble members disagree on the dataset: {first.ref} is {first.dataset.name}, "
                f"{other.ref} is {other.dataset.name}; ensemble models of one dataset"
            )
        for label, field in PLAN_FIELDS.items():
            mine, theirs = getattr(plan, field), getattr(other_plan, field)
            if mine != theirs:
                raise ConfigError(
                    f"ensemble members disagree on the {label}: {first.ref} has {mine}, {other.ref} has {theirs}; "
                    "ensemble models trained with the same plan"
                )
    return plan


def stored_postprocessing(records: Sequence[ArchitectureRecord], plan: Plan) -> Postprocessing:
    """The members' stored postprocessing when they all store the same one, else none."""
    decisions = {Postprocessing.model_validate(r.provenance.get(PROVENANCE_KEY) or {}).keep_largest for r in records}
    if len(decisions) != 1:
        log.info("ensemble members chose different postprocessing: none applied (--keep-largest sets one)")
        return Postprocessing()
    return Postprocessing(keep_largest=decisions.pop()).check(plan)


def load_model(
    registry: Registry,
    refs: Sequence[str],
    host: PluginHost,
    device: torch.device | str = "cpu",
    postprocessing: Postprocessing | None = None,
) -> LoadedModel:
    """The model of ``refs`` (one record, or several as an ensemble) in eval mode on ``device``;
    ``postprocessing`` replaces the stored decision (checked against the plan)."""
    if not refs:
        raise ConfigError("no model given: pass REF, or --ensemble REF,REF,...")
    records = [registry.get(ref) for ref in refs]
    plan = check_members(records)
    networks: list[nn.Module] = []
    for record in records:
        networks.extend(network_with_weights(registry, record, name, host) for name in weight_artifacts(record))
    network = networks[0] if len(networks) == 1 else SoftmaxAverage(networks)
    chosen = postprocessing.check(plan) if postprocessing is not None else stored_postprocessing(records, plan)
    return LoadedModel(
        network=network.to(device).eval(), plan=plan, records=records, postprocessing=chosen, members=len(networks)
    )
