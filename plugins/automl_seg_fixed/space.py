"""The ``fixed`` search space: one MONAI DynUNet configured from the plan, nnU-Net style.

It holds exactly one architecture, so it is usable before any real search exists and is the
baseline searched spaces must beat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monai.networks.nets import DynUNet
from torch import nn

from automl_seg.api import Plan, channels_last_on_cpu, onednn_conv3d
from automl_seg.interfaces import Budget

#: Feature maps of the first level per budget; each level doubles them up to ``MAX_FILTERS``. ``standard``
#: keeps quick's width on its larger patch so that the baseline retrains at about DiNTS' cost: at
#: 48x64x48, two patches a step, 8 filters train a step in about 0.8x the DiNTS standard network's time
#: and 16 filters in about 2.4x, which would take the standard retraining past an hour on 2 CPU cores.
BASE_FILTERS: dict[str, int] = {"quick": 8, "standard": 8, "full": 32}
MAX_FILTERS = 320
#: Deep supervision heads per budget: extra outputs of the coarser decoder levels, trained too
#: (``automl_seg.engine.loss`` weights them). ``full`` follows nnU-Net (2 heads). At ``quick`` they
#: measured no gain (held-out Dice 0.8694 with against 0.8690 without, 3 seeds, paired p = 0.47;
#: ``benchmarks/RESULTS.md``) for about a fifth more CPU time, so ``quick`` and ``standard`` (not yet
#: measured) train without; ``search --strategy fixed --set deep_supervision=2`` asks for them.
DEEP_SUPERVISION: dict[str, int] = {"quick": 0, "standard": 0, "full": 2}
#: Stop downsampling an axis once the feature map along it would fall below this many voxels.
MIN_FEATURE_SIDE = 4
#: An axis whose spacing is more than this times the finest one is neither downsampled nor given a
#: 3-voxel kernel until the others have caught up (nnU-Net's anisotropy rule).
ANISOTROPY_RATIO = 2.0


def plan_topology(
    patch_size: Sequence[int], spacing: Sequence[float], max_levels: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Kernel sizes and strides per level for a patch and spacing (first level has stride 1).

    Each level halves every axis whose current spacing is within ``ANISOTROPY_RATIO`` of the finest
    one and whose feature map stays at least ``MIN_FEATURE_SIDE`` voxels; coarse axes get kernel 1
    until they are no longer coarse."""
    sides = [int(s) for s in patch_size]
    current = [float(s) for s in spacing]
    kernels: list[list[int]] = []
    strides: list[list[int]] = [[1, 1, 1]]
    for _ in range(max_levels):
        finest = min(current)
        coarse = [c > ANISOTROPY_RATIO * finest for c in current]
        kernels.append([1 if is_coarse else 3 for is_coarse in coarse])
        stride = [
            2 if not is_coarse and side % 2 == 0 and side // 2 >= MIN_FEATURE_SIDE else 1
            for side, is_coarse in zip(sides, coarse, strict=True)
        ]
        if stride == [1, 1, 1]:
            break
        strides.append(stride)
        sides = [side // s for side, s in zip(sides, stride, strict=True)]
        current = [c * s for c, s in zip(current, stride, strict=True)]
    finest = min(current)
    kernels.append([1 if c > ANISOTROPY_RATIO * finest else 3 for c in current])
    return kernels[: len(strides)], strides


class FixedSpace:
    """A search space with a single member: DynUNet with nnU-Net-like kernels and strides."""

    name = "fixed"
    version = "1"
    budgets = tuple(BASE_FILTERS)

    def default_args(self, plan: Plan, budget: Budget) -> dict[str, Any]:
        max_levels = max(1, (plan.divisor & -plan.divisor).bit_length() - 1)  # patch sides divide 2**levels
        kernels, strides = plan_topology(plan.patch_size, plan.spacing, max_levels=max_levels)
        base = BASE_FILTERS[budget]
        return {
            "in_channels": plan.in_channels,
            "out_channels": plan.num_classes,
            "kernel_size": kernels,
            "strides": strides,
            "filters": [min(base * 2**level, MAX_FILTERS) for level in range(len(strides))],
            "norm_name": "instance",
            "res_block": False,
            "deep_supervision": min(DEEP_SUPERVISION[budget], max_heads(strides)),
        }

    def build_network(self, args: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
        """DynUNet from ``args``, channels-last on the CPU (``automl_seg.layout``), batch-1 convolutions on
        oneDNN (``automl_seg.onednn``); ``arch`` is empty (this space has one architecture)."""
        network = DynUNet(**dynunet_arguments(args))
        return onednn_conv3d(channels_last_on_cpu(network))

    def monai_network_config(self, args: Mapping[str, Any], arch: Mapping[str, Any]) -> dict[str, Any]:
        """The same DynUNet as a MONAI bundle config item (the speed-ups keep its state dict)."""
        return {"_target_": "monai.networks.nets.DynUNet", **dynunet_arguments(args)}


def max_heads(strides: Sequence[Sequence[int]]) -> int:
    """Deep supervision heads a DynUNet of these strides can have: one per decoder level below the top."""
    return max(0, len(strides) - 2)


def dynunet_arguments(args: Mapping[str, Any]) -> dict[str, Any]:
    """``DynUNet``'s constructor arguments for the space's ``args`` (JSON-serialisable); ``deep_supervision``
    is the number of extra heads (0, or absent in records made before it, for none)."""
    heads = int(args.get("deep_supervision", 0))
    return {
        "spatial_dims": 3,
        "in_channels": int(args["in_channels"]),
        "out_channels": int(args["out_channels"]),
        "kernel_size": [list(k) for k in args["kernel_size"]],
        "strides": [list(s) for s in args["strides"]],
        "upsample_kernel_size": [list(s) for s in args["strides"][1:]],
        "filters": [int(f) for f in args["filters"]],
        "norm_name": args.get("norm_name", "instance"),
        "res_block": bool(args.get("res_block", False)),
        **({"deep_supervision": True, "deep_supr_num": heads} if heads else {}),
    }
