"""The ``dints`` search space: constructor arguments per plan, and the discrete network of an arch payload."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from monai.networks.nets import DiNTS
from torch import nn

from automl_seg.api import onednn_conv3d
from automl_seg.errors import ConfigError
from automl_seg_dints.args import PRESET_ARGS, DintsSpaceArgs, check_arch, check_patch, parse_space_args
from automl_seg_dints.interpolate import use_separable_trilinear
from automl_seg_dints.static_topology import StaticTopologyInstance
from automl_seg_dints.stems import fast_stems
from automl_seg_dints.supernet import FastTopologySearch, MemoryEstimator, build_supernet
from automl_seg_dints.topology import OPS, DecodedArch, Topology, decode

log = logging.getLogger(__name__)

SPACE_VERSION = "1"


def build_discrete_network(args: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    """MONAI's ``DiNTS`` around a ``TopologyInstance`` of the architecture (MONAI's own classes; its active
    paths fixed at construction so exporters follow them, ``automl_seg_dints.static_topology``), with
    the stems' CPU speed-ups (``automl_seg_dints.stems``), separable trilinear resizing
    (``automl_seg_dints.interpolate``) and batch-1 convolutions on oneDNN (``automl_seg.onednn``):
    same function, same state dict."""
    space_args = parse_space_args(args)
    try:
        decoded = DecodedArch.from_payload(dict(arch))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"invalid dints architecture payload ({exc}); expected arch_code_a, arch_code_c, node_a"
        ) from exc
    check_arch(space_args, decoded)
    with contextlib.redirect_stdout(io.StringIO()):  # MONAI prints a patch-size hint on construction
        instance = StaticTopologyInstance(
            arch_code=[decoded.arch_code_a.astype(np.float32), decoded.arch_code_c],
            channel_mul=space_args.channel_mul,
            num_blocks=space_args.num_blocks,
            num_depths=space_args.num_depths,
            use_downsample=space_args.use_downsample,
        )
    network = DiNTS(
        dints_space=instance,
        in_channels=space_args.in_channels,
        num_classes=space_args.num_classes,
        use_downsample=space_args.use_downsample,
        node_a=decoded.node_a,
    )
    return onednn_conv3d(use_separable_trilinear(fast_stems(network)))


def monai_network_config(args: Mapping[str, Any], arch: Mapping[str, Any]) -> dict[str, Any]:
    """``build_discrete_network``'s network as a MONAI bundle config item: ``DiNTS`` around MONAI's own
    ``TopologyInstance`` (the arrays as NumPy expressions, as MONAI's classes take them). Its state dict
    is the discrete network's: the speed-ups and the static topology add no parameters."""
    space_args = parse_space_args(args)
    decoded = DecodedArch.from_payload(dict(arch))
    check_arch(space_args, decoded)

    def array(values: np.ndarray, dtype: str) -> str:
        return f"$numpy.array({json.dumps(values.tolist())}, dtype=numpy.{dtype})"

    return {
        "_target_": "monai.networks.nets.DiNTS",
        "dints_space": {
            "_target_": "monai.networks.nets.TopologyInstance",
            "arch_code": [array(decoded.arch_code_a, "float32"), array(decoded.arch_code_c, "int64")],
            "channel_mul": space_args.channel_mul,
            "num_blocks": space_args.num_blocks,
            "num_depths": space_args.num_depths,
            "use_downsample": space_args.use_downsample,
        },
        "in_channels": space_args.in_channels,
        "num_classes": space_args.num_classes,
        "use_downsample": space_args.use_downsample,
        "node_a": array(decoded.node_a, decoded.node_a.dtype.name),
    }


@functools.lru_cache(maxsize=8)
def _estimator(args_json: str, batch_size: int, patch_size: tuple[int, int, int]) -> MemoryEstimator:
    """One memory estimator per (space arguments, batch, patch): building its supernet is not free."""
    a = DintsSpaceArgs.model_validate(json.loads(args_json))
    supernet = FastTopologySearch(a.num_blocks, a.num_depths, a.channel_mul, a.use_downsample)
    return MemoryEstimator(supernet, batch_size, patch_size)


class DintsSpace:
    """The DiNTS topology space (MONAI's arch_code layout); registered as ``dints``."""

    name = "dints"
    version = SPACE_VERSION
    budgets = tuple(PRESET_ARGS)

    def default_args(self, plan: Any, budget: str) -> dict[str, Any]:
        if budget not in PRESET_ARGS:
            raise ConfigError(f"unknown budget '{budget}' for the dints space; use one of: {', '.join(PRESET_ARGS)}")
        preset = dict(PRESET_ARGS[budget])
        # the full preset's depth 4 needs sides that are multiples of 32; step down (not below the
        # quick preset's depth) when the plan's patch does not allow it
        depth = preset["num_depths"]
        floor = PRESET_ARGS["quick"]["num_depths"]
        while depth > floor and any(s % 2 ** (depth + 1) for s in plan.patch_size):
            depth -= 1
        if depth != preset["num_depths"]:
            log.info("dints: patch %s allows num_depths=%d (preset %d)", plan.patch_size, depth, preset["num_depths"])
        preset["num_depths"] = depth
        args = DintsSpaceArgs(in_channels=plan.in_channels, num_classes=plan.num_classes, **preset)
        check_patch(args, plan.patch_size)
        return args.model_dump()

    def build_network(self, args: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
        return build_discrete_network(args, arch)

    def monai_network_config(self, args: Mapping[str, Any], arch: Mapping[str, Any]) -> dict[str, Any]:
        return monai_network_config(args, arch)

    def build_supernet(self, args: Mapping[str, Any]) -> nn.Module:
        """Every path and operation, weighted by the architecture parameters (``.dints_space``): the
        network a gradient-based strategy searches (MONAI's ``DiNTS`` around our faster space)."""
        return build_supernet(parse_space_args(args))

    def sample_arch(self, args: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
        """A random valid architecture (the decode of random probabilities); same rng state, same arch."""
        space_args = parse_space_args(args)
        topology = Topology(space_args.num_depths)
        generator = torch.Generator().manual_seed(rng.getrandbits(31))
        path_probs = torch.rand(space_args.num_blocks, topology.num_paths, generator=generator)
        op_logits = torch.rand(space_args.num_blocks, topology.num_paths, len(OPS), generator=generator)
        return decode(topology, path_probs, op_logits).to_payload()

    def estimate_memory(self, args: Mapping[str, Any], arch: Mapping[str, Any], plan: Any) -> dict[str, float]:
        """The estimator's figures for a discrete arch: ``fraction`` of the full supernet (the scale of
        ``memory_budget``) and ``mb`` at the plan's batch and patch."""
        space_args = parse_space_args(args)
        decoded = DecodedArch.from_payload(dict(arch))
        check_arch(space_args, decoded)
        patch = tuple(int(s) for s in plan.patch_size)
        estimator = _estimator(json.dumps(space_args.model_dump(), sort_keys=True), int(plan.batch_size), patch)
        return {
            "fraction": estimator.discrete_fraction(decoded.arch_code_a, decoded.arch_code_c),
            "mb": estimator.discrete_mb(decoded.arch_code_a, decoded.arch_code_c),
        }
