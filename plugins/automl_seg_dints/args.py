"""Constructor arguments of the ``dints`` space and their checks against a patch and an architecture.

Kept apart from ``space`` and ``supernet`` (both use them) so that neither imports the other's module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automl_seg.api import describe_validation_error
from automl_seg.errors import ConfigError
from automl_seg_dints.topology import OPS, DecodedArch, Topology


class DintsSpaceArgs(BaseModel):
    """Constructor arguments of a DiNTS network (search supernet and discrete instance alike)."""

    model_config = ConfigDict(extra="forbid")

    in_channels: int = Field(gt=0)
    num_classes: int = Field(gt=1)
    num_blocks: int = Field(gt=0)
    num_depths: int = Field(ge=2, le=5)
    channel_mul: float = Field(gt=0)
    use_downsample: bool = True

    @property
    def divisor(self) -> int:
        """Every input side must be a multiple of this (stem /2, then D-1 more halvings, then /2 again)."""
        return 2 ** (self.num_depths + 1)


PRESET_ARGS: dict[str, dict[str, Any]] = {
    "quick": {"num_blocks": 4, "num_depths": 3, "channel_mul": 0.25},
    # the quick width: standard trains on the plan's larger patch, and channel_mul 0.5 made a training
    # step about 3x slower there (measured), a third of the steps the standard hour holds
    "standard": {"num_blocks": 4, "num_depths": 3, "channel_mul": 0.25},
    "full": {"num_blocks": 12, "num_depths": 4, "channel_mul": 0.5},
}


def parse_space_args(args: Mapping[str, Any]) -> DintsSpaceArgs:
    try:
        return DintsSpaceArgs.model_validate(dict(args))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, "dints space arguments")) from exc


def check_patch(args: DintsSpaceArgs, patch_size: Sequence[int]) -> None:
    """A clear error when a patch cannot go through the network's 2^(D+1) halvings."""
    bad = [int(s) for s in patch_size if int(s) % args.divisor]
    if bad:
        raise ConfigError(
            f"patch size {tuple(int(s) for s in patch_size)} is not divisible by {args.divisor} "
            f"(2^(num_depths+1) with num_depths={args.num_depths}); use sides that are multiples of {args.divisor}"
        )


def check_arch(args: DintsSpaceArgs, arch: DecodedArch) -> None:
    paths = Topology(args.num_depths).num_paths
    shapes = {
        "arch_code_a": (arch.arch_code_a.shape, (args.num_blocks, paths)),
        "arch_code_c": (arch.arch_code_c.shape, (args.num_blocks, paths)),
        "node_a": (arch.node_a.shape, (args.num_blocks + 1, args.num_depths)),
    }
    for key, (got, want) in shapes.items():
        if tuple(got) != want:
            raise ConfigError(f"architecture '{key}' has shape {tuple(got)}, expected {want} for these space arguments")
    if arch.arch_code_c.min() < 0 or arch.arch_code_c.max() >= len(OPS):
        raise ConfigError(f"architecture 'arch_code_c' holds operation indices outside 0..{len(OPS) - 1}")
    if not arch.arch_code_a.any(axis=1).all():
        raise ConfigError("architecture 'arch_code_a' has a block without any active path")
