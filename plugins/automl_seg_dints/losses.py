"""The architecture-loss terms of DiNTS (arXiv 2103.15954, section 3.3) and their ramped sum."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from automl_seg_dints.supernet import FastTopologySearch, MemoryEstimator

_EPS = 1e-5


@dataclass
class ArchLossTerms:
    """The regularisers added to the segmentation loss of an architecture step."""

    entropy_paths: torch.Tensor
    entropy_ops: torch.Tensor
    memory: torch.Tensor
    topology: torch.Tensor
    usage_fraction: torch.Tensor
    usage_mb: torch.Tensor

    def combined(self, ramp: float, topology_weight: float) -> torch.Tensor:
        """``ramp * (H_paths + H_ops + L_memory + w_topo * L_topology)``: the ramp scales every term.

        (MONAI's tutorial ramps only the entropies in one of its branches; that is not the method.)"""
        return ramp * (self.entropy_paths + self.entropy_ops + self.memory + topology_weight * self.topology)

    def as_floats(self) -> dict[str, float]:
        return {
            "entropy_paths": float(self.entropy_paths.detach()),
            "entropy_ops": float(self.entropy_ops.detach()),
            "memory_loss": float(self.memory.detach()),
            "topology_loss": float(self.topology.detach()),
            "memory_estimated": float(self.usage_fraction.detach()),
            "memory_estimated_mb": float(self.usage_mb.detach()),
        }


def entropy_of_children(child_probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the per-block distributions over path patterns."""
    return -(child_probs * torch.log(child_probs + _EPS)).mean()


def entropy_of_ops(op_logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the per-path operation distributions."""
    return -(F.softmax(op_logits, -1) * F.log_softmax(op_logits, -1)).mean()


def memory_loss(usage_fraction: torch.Tensor, budget_fraction: float) -> torch.Tensor:
    """``|sigma - usage / full|``: distance of the expected memory share from the budget."""
    return torch.abs(budget_fraction - usage_fraction)


def topology_loss(space: FastTopologySearch, child_probs: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between consecutive blocks' node activations.

    For every resolution set ``m``: the probability that block ``b`` writes exactly ``m`` should
    match the probability that block ``b+1`` reads exactly ``m``. A continuous supernet whose
    blocks disagree here has no consistent discrete counterpart (MONAI ``get_topology_entropy``)."""
    topo = space.topology
    writes = child_probs[:-1] @ topo.node_code_onehot(topo.child_out_code).to(child_probs)
    reads = child_probs[1:] @ topo.node_code_onehot(topo.child_in_code).to(child_probs)
    bce = writes * torch.log(reads + _EPS) + (1 - writes) * torch.log(1 - reads + _EPS)
    return -bce.sum()


def arch_loss_terms(space: FastTopologySearch, estimator: MemoryEstimator, budget_fraction: float) -> ArchLossTerms:
    child_probs = space.topology.child_probabilities(space.raw_path_probs())
    op_probs = space.op_probs()
    usage = estimator.usage_mb(space.path_probs(), op_probs)
    fraction = usage / estimator.full_mb(op_probs)
    return ArchLossTerms(
        entropy_paths=entropy_of_children(child_probs),
        entropy_ops=entropy_of_ops(space.log_alpha_c),
        memory=memory_loss(fraction, budget_fraction),
        topology=topology_loss(space, child_probs),
        usage_fraction=fraction,
        usage_mb=usage.detach(),
    )
