"""Megabyte budgets in real training memory: DiNTS' cost model calibrated by measurements.

The cost model (``MemoryEstimator``) counts the searched cells' activations only. A network's real
training peak adds the stems, weights, gradients, optimiser state and the framework's workspace, so
``--set memory_budget=900MB`` read on the model's scale is not what the device shows. Before a search
with a megabyte budget, the real peak (``automl_seg_dints.measure``) of the space's sparsest and
densest architectures is measured at the search's batch and patch; the line through the two points
maps megabytes to the model's scale, where the search works. Quick preset, batch 4 of 32^3, CPU:
six random architectures estimated at 21-59 MB trained in 72-101 MB (the estimate alone 1.7-3.4x
low); the calibrated line predicted from 14 % below to 1 % above (``benchmarks/bench_budget.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict

from automl_seg_dints.args import DintsSpaceArgs
from automl_seg_dints.measure import measure_training_memory_mb
from automl_seg_dints.supernet import MemoryEstimator
from automl_seg_dints.topology import OPS, DecodedArch, Topology, decode

log = logging.getLogger(__name__)

_SURE = 0.99  # path probability that makes a path certain (or, as 1 - _SURE, certainly off) in the decode


class MemoryCalibration(BaseModel):
    """The sparsest and the densest architecture's memory on both scales (MB): the cost model's estimate
    and the measured training peak. Memory in between (and beyond) is read off the line through them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    estimated_mb: tuple[float, float]
    measured_mb: tuple[float, float]

    @property
    def usable(self) -> bool:
        """Whether measured memory grows with the estimate, so that the line can be inverted."""
        return self.estimated_mb[1] > self.estimated_mb[0] and self.measured_mb[1] > self.measured_mb[0]

    @property
    def _slope(self) -> float:
        return (self.measured_mb[1] - self.measured_mb[0]) / (self.estimated_mb[1] - self.estimated_mb[0])

    def measured_for(self, estimated_mb: float) -> float:
        """The training memory an architecture of this estimate is expected to take."""
        return self.measured_mb[0] + self._slope * (estimated_mb - self.estimated_mb[0])

    def estimated_for(self, measured_mb: float) -> float:
        """The estimate of an architecture expected to take ``measured_mb`` of training memory."""
        return self.estimated_mb[0] + (measured_mb - self.measured_mb[0]) / self._slope


def reference_archs(args: DintsSpaceArgs, estimator: MemoryEstimator) -> tuple[DecodedArch, DecodedArch]:
    """The sparsest architecture (the fewest paths DiNTS' decode connects, all skip operations) and the
    densest (every path, each with its most memory-hungry operation). Finer fits (a scale per operation
    type from four measurements; a term per active path) predicted those six no better: what remains is
    the cost model's, a sum of activations where the real peak follows the backward pass."""
    topology = Topology(args.num_depths)
    shape = (args.num_blocks, topology.num_paths)
    skip = F.one_hot(torch.zeros(shape, dtype=torch.int64), len(OPS)).float()
    heaviest = F.one_hot(estimator.heaviest_ops(), len(OPS)).float()
    return decode(topology, torch.full(shape, 1 - _SURE), skip), decode(topology, torch.full(shape, _SURE), heaviest)


def calibrate(
    args: DintsSpaceArgs, estimator: MemoryEstimator, batch_size: int, patch: Sequence[int], device: torch.device
) -> MemoryCalibration:
    """Measure the reference architectures at this batch and patch (on the CPU: two short subprocesses)."""
    archs = reference_archs(args, estimator)
    estimated = [estimator.discrete_mb(a.arch_code_a, a.arch_code_c) for a in archs]
    measured = [measure_training_memory_mb(args.model_dump(), a.to_payload(), batch_size, patch, device) for a in archs]
    calibration = MemoryCalibration(estimated_mb=(estimated[0], estimated[1]), measured_mb=(measured[0], measured[1]))
    log.info(
        "dints: memory calibration at batch %d, patch %s: sparsest architecture %.3gMB estimated, %.3gMB measured; "
        "densest %.3gMB estimated, %.3gMB measured",
        batch_size, "x".join(map(str, patch)), estimated[0], measured[0], estimated[1], measured[1],
    )  # fmt: skip
    return calibration
