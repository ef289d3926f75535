"""The DiNTS supernet: every path and every operation, weighted by the architecture parameters.

Its modules and parameter names are those of MONAI's ``TopologySearch`` (it is built from MONAI's
``Cell``), so a MONAI state dict loads into it and the two compute the same function. What differs
is the forward pass, where MONAI spends time and memory it does not need to:

- MONAI applies the ReLU once per convolution operation (4 copies of the same activation, each
  kept for backward); here it is computed once per cell and shared.
- MONAI multiplies every operation output by its softmax weight and the cell output by the path
  probability, so autograd keeps every normalised output (plus the cell sum) for those products.
  Here both weights are folded into the affine parameters of the instance norm that ends each
  operation (``w * (g * x_hat + b) = (w * g) * x_hat + w * b``): no extra products, nothing extra kept.
- Paths of a block that write the same resolution are summed in place.
- In the weight step, narrow cells run their four convolution operations as one 3x3x3 convolution
  (each pseudo-3D pair composed into the 3x3x3 kernel it equals), so the three pseudo-3D
  intermediates are not kept: the search's peak memory falls by a sixth (``_operations_sum``).
- ``3x1x1`` and ``1x1x1`` convolutions run as the equivalent 2D convolutions over a ``(D, H*W)``
  view: PyTorch sends 3D kernels whose last two sizes are 1 to its slow convolution path on the
  CPU.
- The 2x down-sampling preprocess (ReLU, then two 1x1 convolutions with stride 2, one on the input
  shifted by a voxel) slices the two sub-sampled grids first and runs ReLU and 1x1 convolutions on
  them: a quarter of the activation memory, and MONAI's strided convolution on a sliced,
  non-contiguous tensor falls back to PyTorch's slow convolution path.
- Each path's preprocess (ReLU, 1x1 convolution, instance norm, up- or down-sampling) is recomputed
  in backward from the path's input instead of keeping its intermediates: less peak memory for a
  little more time.

Together these cut the search iteration's peak memory and time against MONAI's; on a CPU most of
the remaining time is in the convolutions themselves. ``benchmarks/bench_dints.py`` measures both
against MONAI in the same run (current figures: the README; history: ``benchmarks/RESULTS.md``).

``build_supernet`` adds the stem-level changes (``automl_seg_dints.stems``) and separable
trilinear resizing.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.blocks.dints_block import FactorizedReduceBlock, P3DActiConvNormBlock
from monai.networks.nets import DiNTS
from monai.networks.nets.dints import Cell
from torch import nn
from torch.utils.checkpoint import checkpoint

from automl_seg_dints.args import DintsSpaceArgs
from automl_seg_dints.interpolate import use_separable_trilinear
from automl_seg_dints.stems import fast_stems
from automl_seg_dints.topology import OPS, Topology

BYTES_PER_ELEMENT = 4
FUSED_OPS_MAX_CHANNELS = 16  # see _operations_sum


def filter_numbers(num_depths: int, channel_mul: float) -> list[int]:
    """Channels per resolution (MONAI's ``filter_nums``: 32, 64, ... times ``channel_mul``)."""
    return [int(32 * 2**i * channel_mul) for i in range(num_depths + 1)]


def _conv3d(x: torch.Tensor, weight: torch.Tensor, padding: Sequence[int]) -> torch.Tensor:
    """``F.conv3d(x, weight, padding=padding)``; a ``k x 1 x 1`` kernel (``1 x 1 x 1`` included) runs
    as the equivalent ``k x 1`` 2D convolution on the ``(D, H*W)`` view (same result). PyTorch sends
    such 3D kernels to its slow convolution path on the CPU. Only contiguous inputs: on others the
    view would cost a copy."""
    kd, kh, kw = weight.shape[2:]
    if (kh, kw) != (1, 1) or tuple(padding[1:]) != (0, 0) or not x.is_contiguous():
        return F.conv3d(x, weight, padding=tuple(padding))
    n, _, d, h, w = x.shape
    y = F.conv2d(x.reshape(n, x.shape[1], d, h * w), weight.squeeze(-1), padding=(padding[0], 0))
    return y.view(n, y.shape[1], y.shape[2], h, w)


def _conv(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """One of MONAI's (stride 1, no bias) convolutions through ``_conv3d``."""
    if (
        conv.stride != (1, 1, 1)
        or conv.bias is not None
        or conv.groups != 1
        or conv.dilation != (1, 1, 1)
        or isinstance(conv.padding, str)
    ):
        return conv(x)
    return _conv3d(x, conv.weight, conv.padding)


def _reduce(block: FactorizedReduceBlock, x: torch.Tensor) -> torch.Tensor:
    """MONAI's FactorizedReduceBlock, computed on the even and the odd sub-grids.

    The ReLU commutes with the sub-sampling, so it runs on the two grids (a quarter of the voxels)
    and only they are kept for backward, not the whole activated input."""
    even = _conv3d(F.relu(x[:, :, ::2, ::2, ::2]), block.conv_1.weight, (0, 0, 0))
    odd = _conv3d(F.relu(x[:, :, 1::2, 1::2, 1::2]), block.conv_2.weight, (0, 0, 0))
    return block.norm(torch.cat([even, odd], dim=1))


def _preprocess(cell: Cell, x: torch.Tensor) -> torch.Tensor:
    if isinstance(cell.preprocess, FactorizedReduceBlock):
        return _reduce(cell.preprocess, x)
    if not isinstance(cell.preprocess, nn.Sequential):  # identity: same resolution and width
        return cell.preprocess(x)
    for layer in cell.preprocess:  # ReLU, 1x1 convolution, instance norm; trilinear up-sampling first
        x = _conv(layer, x) if isinstance(layer, nn.Conv3d) else layer(x)
    return x


def _layers(block: nn.Module) -> tuple[list[nn.Conv3d], nn.InstanceNorm3d]:
    """The convolutions (one, or the pseudo-3D pair in order) and the instance norm of one of MONAI's
    operation blocks, typed: MONAI adds them by name (``add_module``), which types them as any module."""
    names = ("conv", "conv_1") if isinstance(block, P3DActiConvNormBlock) else ("conv",)
    return [getattr(block, name) for name in names], cast(nn.InstanceNorm3d, block.norm)


def _composed_kernel(first: nn.Conv3d, second: nn.Conv3d) -> torch.Tensor:
    """The pseudo-3D pair (``k x k x 1`` then ``1 x 1 x k``, say) as the one ``k x k x k`` kernel it
    equals: both are linear without bias, and in each axis one of the two kernels has size 1, so the
    composed kernel is their outer product (zero padding composes too)."""
    kernel = torch.einsum("omabc,midef->oiadbecf", second.weight, first.weight)
    sizes = [a * b for a, b in zip(second.weight.shape[2:], first.weight.shape[2:], strict=True)]
    return kernel.reshape(*kernel.shape[:2], *sizes)


def _kernel(convs: list[nn.Conv3d]) -> torch.Tensor:
    """One operation's kernel: its convolution's, or its pseudo-3D pair's composed."""
    return convs[0].weight if len(convs) == 1 else _composed_kernel(convs[0], convs[1])


def _ram_cost(block: nn.Module) -> float:
    """MONAI's memory cost of one of its DiNTS blocks, relative to the block's output (an attribute the
    blocks set, which the type checker reads as any module)."""
    return cast(float, block.ram_cost)


def _operations_sum(cell: Cell, activated: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k weights[k] * op_k`` over the 3x3x3 and the three pseudo-3D operations.

    Each weight is folded into the affine parameters of the instance norm that ends its operation
    (``w * (g * x_hat + b) = (w * g) * x_hat + w * b``): no products of outputs, nothing extra kept.
    When the convolution weights need gradients (the weight step, where the search peaks in memory)
    and the cell is narrow, the four convolutions run as one 3x3x3 convolution with four times the
    output channels (each pseudo-3D pair composed into its kernel) and one instance norm: the three
    pseudo-3D intermediates, kept for the weight gradients otherwise, are not kept. The extra
    arithmetic of the composed kernel costs little where oneDNN's 3D convolutions are inefficient,
    with few channels (``FUSED_OPS_MAX_CHANNELS``); wider cells keep separate convolutions. When
    only input gradients are needed (the architecture step) the separate convolutions are faster
    and keep nothing extra, so they run.
    """
    ops = [_layers(block) for block in cell.op.ops[1:]]
    eps = ops[0][1].eps
    gains = [norm.weight * w for (_, norm), w in zip(ops, weights, strict=True)]
    shifts = [norm.bias * w for (_, norm), w in zip(ops, weights, strict=True)]
    if activated.shape[1] <= FUSED_OPS_MAX_CHANNELS and ops[0][0][0].weight.requires_grad:
        kernel = torch.cat([_kernel(convs) for convs, _ in ops])  # the four kernels along output channels
        y = F.conv3d(activated, kernel, padding=kernel.shape[-1] // 2)
        y = F.instance_norm(y, weight=torch.cat(gains), bias=torch.cat(shifts), eps=eps)
        return y.view(y.shape[0], len(ops), -1, *y.shape[2:]).sum(1)
    total: torch.Tensor | None = None
    for (convs, _), gain, shift in zip(ops, gains, shifts, strict=True):
        y = activated
        for conv in convs:
            y = _conv(conv, y)
        y = F.instance_norm(y, weight=gain, bias=shift, eps=eps)
        total = y if total is None else total.add_(y)
    assert total is not None
    return total


def _activated_and_skip(cell: Cell, x: torch.Tensor, skip_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The cell's preprocessed input after ReLU (what the convolutions read), and its skip term."""
    x = _preprocess(cell, x)
    return F.relu(x), x * skip_weight


def _mixed_op(cell: Cell, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k weights[k] * op_k(preprocess(x))`` with MONAI's op order (skip, 3x3x3, 3 x P3D).

    Under autograd the preprocess (ReLU, 1x1 convolution, instance norm; up- or down-sampling) is
    recomputed in backward from the path's input, which the paths leaving a node share, instead of
    keeping its intermediate tensors per path (the preprocessed tensor itself included, which the
    skip term's weight gradient would keep otherwise)."""
    if torch.is_grad_enabled():
        activated, skip = checkpoint(_activated_and_skip, cell, x, weights[0], use_reentrant=False)
    else:
        activated, skip = _activated_and_skip(cell, x, weights[0])
    return _operations_sum(cell, activated, weights[1:]).add_(skip)


class FastTopologySearch(nn.Module):
    """Drop-in search space for ``monai.networks.nets.DiNTS`` (``dints_space=``), MONAI's parameters."""

    ram_cost: torch.Tensor  #: a buffer, ``(blocks, P, ops)``: each operation's memory cost, preprocessing included

    def __init__(self, num_blocks: int, num_depths: int, channel_mul: float = 1.0, use_downsample: bool = True) -> None:
        super().__init__()
        self.num_blocks = num_blocks
        self.num_depths = num_depths
        self.use_downsample = use_downsample
        self.topology = Topology(num_depths)
        self.filter_nums = filter_numbers(num_depths, channel_mul)
        shift = int(use_downsample)
        topo = self.topology
        self.cell_tree = nn.ModuleDict()
        with contextlib.redirect_stdout(io.StringIO()):  # keep MONAI's construction chatter off stdout
            for b in range(num_blocks):
                for p in range(topo.num_paths):
                    self.cell_tree[str((b, p))] = Cell(
                        self.filter_nums[topo.path_in[p] + shift],
                        self.filter_nums[topo.path_out[p] + shift],
                        int(topo.path_rate[p]),
                    )
        # same initialisation as MONAI's TopologySearch
        self.log_alpha_c = nn.Parameter(torch.zeros(num_blocks, topo.num_paths, len(OPS)).normal_(1, 0.01))
        self.log_alpha_a = nn.Parameter(torch.zeros(num_blocks, topo.num_paths).normal_(0, 0.01))
        cost = np.zeros((num_blocks, topo.num_paths, len(OPS)), dtype=np.float32)
        for b in range(num_blocks):
            for p in range(topo.num_paths):
                cell = self._cell(b, p)
                cost[b, p] = [_ram_cost(op) + _ram_cost(cell.preprocess) for op in cell.op.ops]
        self.register_buffer("ram_cost", torch.from_numpy(cost), persistent=False)

    def _cell(self, b: int, p: int) -> Cell:
        """Block ``b``'s cell on path ``p`` (typed: a ModuleDict holds any module)."""
        return cast(Cell, self.cell_tree[str((b, p))])

    # -- architecture parameters ------------------------------------------------------------------

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.log_alpha_a, self.log_alpha_c]

    def raw_path_probs(self) -> torch.Tensor:
        """Independent sigmoid probability of each path, ``(blocks, P)``."""
        return torch.sigmoid(self.log_alpha_a)

    def path_probs(self) -> torch.Tensor:
        """Path probabilities renormalised to exclude the empty block (MONAI ``get_prob_a``)."""
        raw = self.raw_path_probs()
        return raw / (1 - (1 - raw).prod(-1, keepdim=True))

    def op_probs(self) -> torch.Tensor:
        return F.softmax(self.log_alpha_c, dim=-1)

    # -- forward ---------------------------------------------------------------------------------

    def forward(self, x: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        topo = self.topology
        weights = self.op_probs() * self.path_probs().unsqueeze(-1)
        inputs = list(x)
        for b in range(self.num_blocks):
            outputs: list[torch.Tensor | None] = [None] * self.num_depths
            for p in range(topo.num_paths):
                y = _mixed_op(self._cell(b, p), inputs[topo.path_in[p]], weights[b, p])
                target = topo.path_out[p]
                outputs[target] = y if outputs[target] is None else outputs[target].add_(y)
            inputs = outputs  # type: ignore[assignment]
        return inputs


class MemoryEstimator:
    """DiNTS' activation-memory estimate of a (soft or discrete) architecture, in MB.

    A path costs ``(1 + sum_k p_k * ram_cost_k) * output_elements``, where ``ram_cost_k`` is MONAI's
    per-operation cost (preprocessing included) relative to the path's output tensor. Unlike MONAI,
    output sizes use each resolution's true channel count and spatial size (MONAI uses the channel
    count of the next finer level and divides by 2 for the stem); only ratios enter the search, so
    the search itself is the same, and the MB figure is closer to real feature-map memory."""

    def __init__(self, space: FastTopologySearch, batch_size: int, patch_size: Sequence[int]) -> None:
        shift = int(space.use_downsample)
        elements = []
        for d in range(space.num_depths):
            level = d + shift
            voxels = float(np.prod([s // 2**level for s in patch_size]))
            elements.append(batch_size * space.filter_nums[level] * voxels)
        self._elements = torch.tensor(elements, dtype=torch.float32)[torch.from_numpy(space.topology.path_out)]
        self._ram_cost = space.ram_cost.detach().cpu()
        self.num_blocks = space.num_blocks
        self.num_paths = space.topology.num_paths

    def path_mb(self, op_probs: torch.Tensor) -> torch.Tensor:
        """Estimated MB of each path, ``(blocks, P)``; differentiable in the operation probabilities."""
        ram_cost = self._ram_cost.to(op_probs)
        return (1 + (ram_cost * op_probs).sum(-1)) * self._elements.to(op_probs) * BYTES_PER_ELEMENT / 2**20

    def usage_mb(self, path_probs: torch.Tensor, op_probs: torch.Tensor) -> torch.Tensor:
        """Estimated MB; differentiable in both probability tensors."""
        return (path_probs * self.path_mb(op_probs)).sum()

    def full_mb(self, op_probs: torch.Tensor) -> torch.Tensor:
        """The estimate with every path active (the denominator of the budget fraction)."""
        return self.path_mb(op_probs).sum()

    def heaviest_ops(self) -> torch.Tensor:
        """Index of each path's most memory-hungry operation, ``(blocks, P)``."""
        return self._ram_cost.argmax(-1)

    def uniform_op_probs(self) -> torch.Tensor:
        return torch.full((self.num_blocks, self.num_paths, len(OPS)), 1.0 / len(OPS))

    def reference_full_mb(self) -> float:
        """Full supernet with uniform operation probabilities: the scale's denominator (``900MB`` budgets get there
        through ``automl_seg_dints.calibrate``)."""
        return float(self.full_mb(self.uniform_op_probs()))

    def discrete_mb(self, arch_code_a: np.ndarray, arch_code_c: np.ndarray) -> float:
        ops = F.one_hot(torch.as_tensor(arch_code_c, dtype=torch.int64), len(OPS)).float()
        return float(self.usage_mb(torch.as_tensor(arch_code_a, dtype=torch.float32), ops))

    def path_fractions(self, arch_code_c: np.ndarray) -> np.ndarray:
        """Each path's share of the full network's memory with these operations, ``(blocks, P)``."""
        mb = self.path_mb(F.one_hot(torch.as_tensor(arch_code_c, dtype=torch.int64), len(OPS)).float())
        return (mb / mb.sum()).double().numpy()

    def discrete_fraction(self, arch_code_a: np.ndarray, arch_code_c: np.ndarray) -> float:
        """The discrete counterpart of the search's ``usage / full`` ratio."""
        return float((np.asarray(arch_code_a) * self.path_fractions(arch_code_c)).sum())

    def minimum_fraction(self) -> float:
        """Smallest fraction any architecture reaches: one skip path per block at the coarsest level.

        A resolution-preserving skip path costs only its output tensor, chains with itself from
        block to block, and the coarsest level has the smallest tensors, so no architecture is
        cheaper. Relative to the reference (uniform-operation) full supernet."""
        per_block = float(self._elements.min())
        return self.num_blocks * per_block * BYTES_PER_ELEMENT / 2**20 / self.reference_full_mb()


def build_supernet(args: DintsSpaceArgs) -> DiNTS:
    """MONAI's DiNTS stem around our (faster, same-function) search space.

    The stems get the discrete network's CPU speed-ups (``automl_seg_dints.stems``), and every
    trilinear resize is computed separably (see ``automl_seg_dints.interpolate``)."""
    space = FastTopologySearch(args.num_blocks, args.num_depths, args.channel_mul, args.use_downsample)
    model = DiNTS(space, in_channels=args.in_channels, num_classes=args.num_classes, use_downsample=args.use_downsample)
    fast_stems(model)
    use_separable_trilinear(model)
    return model
