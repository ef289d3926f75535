"""The DiNTS topology grid: which path joins which resolutions, and the decode of the best topology.

A block holds ``3 * D - 2`` paths (every resolution to itself, to the next finer and the next
coarser one). Paths are indexed as in MONAI's ``TopologyConstruction`` so a decoded architecture is
MONAI's ``arch_code`` layout. A *child* is one non-empty on/off pattern of the paths of a block;
children are numbered like MONAI's ``child_list`` (binary, path 0 the most significant bit).

Decode is a dynamic program over blocks. Consecutive blocks connect only when the resolutions a
block writes (its output-node code) are exactly those the next block reads (its input-node code),
so the state carried from block to block is the output-node code (``2^D - 1`` states), never
MONAI's dense ``(2 + (2^P - 1) * blocks)^2`` adjacency matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

OPS = ("skip_connect", "conv_3x3x3", "conv_3x3x1", "conv_3x1x3", "conv_1x3x3")
DIRECTIONS = 3
#: MONAI adds these to probabilities and edge weights in its decode (avoid log 0 / zero-weight edges).
_LOG_EPS = 1e-5
_EDGE_EPS = 1e-3


@dataclass(frozen=True)
class Topology:
    """Index tables of a ``num_depths`` x ``num_blocks`` grid (MONAI's path numbering)."""

    num_depths: int

    @property
    def num_paths(self) -> int:
        return DIRECTIONS * self.num_depths - 2

    @cached_property
    def path_in(self) -> np.ndarray:
        """Resolution index each path reads (MONAI ``arch_code2in``)."""
        return np.array([(i + 1) // DIRECTIONS - 1 + (i + 1) % DIRECTIONS for i in range(self.num_paths)])

    @cached_property
    def path_out(self) -> np.ndarray:
        """Resolution index each path writes (MONAI ``arch_code2out``)."""
        return np.repeat(np.arange(self.num_depths), DIRECTIONS)[1:-1]

    @cached_property
    def path_rate(self) -> np.ndarray:
        """Resolution change of each path: -1 down, 0 same, 1 up (MONAI ``arch_code2ops``)."""
        return np.array(([-1, 0, 1] * self.num_depths)[1:-1])

    @cached_property
    def children(self) -> np.ndarray:
        """All non-empty path patterns, ``(2^P - 1, P)`` uint8, in MONAI ``child_list`` order."""
        codes = np.arange(1, 2**self.num_paths, dtype=np.int64)
        shifts = np.arange(self.num_paths - 1, -1, -1)
        return ((codes[:, None] >> shifts) & 1).astype(np.uint8)

    def _node_code(self, node_of_path: np.ndarray) -> np.ndarray:
        """Per child: bit mask (bit d = resolution d) of the nodes its active paths touch."""
        bits = (1 << node_of_path).astype(np.int64)
        return np.bitwise_or.reduce(self.children.astype(np.int64) * bits, axis=1)

    @cached_property
    def child_in_code(self) -> np.ndarray:
        return self._node_code(self.path_in)

    @cached_property
    def child_out_code(self) -> np.ndarray:
        return self._node_code(self.path_out)

    def node_code_onehot(self, codes: np.ndarray) -> torch.Tensor:
        """``(children, 2^D - 1)`` float matrix: child -> its node code (column ``code - 1``)."""
        onehot = np.zeros((len(codes), 2**self.num_depths - 1), dtype=np.float32)
        onehot[np.arange(len(codes)), codes - 1] = 1.0
        return torch.from_numpy(onehot)

    def child_probabilities(self, path_probs: torch.Tensor) -> torch.Tensor:
        """Probability of every child per block from raw sigmoid path probabilities ``(blocks, P)``.

        Paths are independent Bernoulli variables; the all-off pattern is excluded and the rest
        renormalised (as MONAI's ``get_prob_a(child=True)``)."""
        child = torch.from_numpy(self.children).to(path_probs)
        per_path = child[None] * path_probs[:, None, :] + (1 - child[None]) * (1 - path_probs[:, None, :])
        norm = 1 - (1 - path_probs).prod(-1)
        return per_path.prod(-1) / norm[:, None]


@dataclass(frozen=True)
class DecodedArch:
    """A discrete architecture in MONAI's layout."""

    node_a: np.ndarray  # (blocks + 1, D) 0/1: active resolutions entering each block, then leaving the last
    arch_code_a: np.ndarray  # (blocks, P) 0/1: active paths
    arch_code_c: np.ndarray  # (blocks, P) int: operation index per path (see OPS)

    def to_payload(self) -> dict[str, list]:
        """JSON-able record payload (loads into MONAI ``TopologyInstance``/``DiNTS``)."""
        return {
            "arch_code_a": self.arch_code_a.astype(int).tolist(),
            "arch_code_c": self.arch_code_c.astype(int).tolist(),
            "node_a": self.node_a.astype(int).tolist(),
        }

    @classmethod
    def from_payload(cls, payload: dict) -> DecodedArch:
        return cls(
            node_a=np.asarray(payload["node_a"], dtype=np.int64),
            arch_code_a=np.asarray(payload["arch_code_a"], dtype=np.int64),
            arch_code_c=np.asarray(payload["arch_code_c"], dtype=np.int64),
        )


def node_activation(topology: Topology, arch_code_a: np.ndarray) -> np.ndarray:
    """``node_a`` of a path pattern: inputs of the first block, then the outputs of every block."""
    blocks = arch_code_a.shape[0]
    node_a = np.zeros((blocks + 1, topology.num_depths), dtype=np.int64)
    for p in range(topology.num_paths):
        node_a[0, topology.path_in[p]] |= int(arch_code_a[0, p] > 0)
        node_a[1:, topology.path_out[p]] |= (arch_code_a[:, p] > 0).astype(np.int64)
    return node_a


def best_topology(topology: Topology, child_probs: np.ndarray) -> np.ndarray:
    """Child index per block of the most probable connected topology (dynamic program over blocks).

    Cost of choosing child ``j`` in a block is MONAI's edge weight ``-log(p_j + 1e-5) + 0.001``;
    block ``b`` may follow block ``b-1`` only when its input-node code equals the previous output
    code. Per block we keep, for every output-node code, the cheapest chain ending there."""
    blocks, _ = child_probs.shape
    weights = (-np.log(child_probs + _LOG_EPS) + _EDGE_EPS).astype(np.float64)
    num_codes = 2**topology.num_depths  # code 0 unused (a block always has an active path)
    in_code, out_code = topology.child_in_code, topology.child_out_code
    back: list[np.ndarray] = []  # per block >= 1: child -> best child of the previous block
    best_cost = np.zeros(num_codes)  # before block 0 every input code is free (the source)
    best_child = np.full(num_codes, -1, dtype=np.int64)
    for b in range(blocks):
        cost = best_cost[in_code] + weights[b]
        back.append(best_child[in_code])
        best_cost = np.full(num_codes, np.inf)
        best_child = np.full(num_codes, -1, dtype=np.int64)
        order = np.lexsort((cost, out_code))  # grouped by output code, cheapest first
        first = np.ones(len(order), dtype=bool)
        first[1:] = out_code[order][1:] != out_code[order][:-1]
        winners = order[first]
        best_cost[out_code[winners]] = cost[winners]
        best_child[out_code[winners]] = winners
    chosen = np.empty(blocks, dtype=np.int64)
    chosen[-1] = int(best_child[np.argmin(best_cost)])
    for b in range(blocks - 1, 0, -1):
        chosen[b - 1] = back[b][chosen[b]]
    return chosen


def best_topology_in_band(
    topology: Topology, child_probs: np.ndarray, child_cost: np.ndarray, low: float, high: float, step: float = 1e-3
) -> np.ndarray | None:
    """Like ``best_topology``, among the topologies whose summed child cost lies in ``[low, high]``.

    ``child_cost`` is ``(blocks, children)``; costs are summed on a grid of ``step`` (the state
    carried from block to block is then (output-node code, cost so far)). None when no connected
    topology falls in the band."""
    blocks, num_children = child_probs.shape
    weights = (-np.log(child_probs + _LOG_EPS) + _EDGE_EPS).astype(np.float64)
    units = int(np.floor(high / step + 1e-9))
    cost_units = np.rint(child_cost / step).astype(np.int64)
    in_code, out_code = topology.child_in_code, topology.child_out_code
    num_codes = 2**topology.num_depths
    best = np.full((num_codes, units + 1), np.inf)
    best[:, 0] = 0.0  # before block 0 every input code is free, at no cost
    back = []  # per block: (output code, cost units) -> chosen child
    for b in range(blocks):
        new = np.full_like(best, np.inf)
        chosen = np.full(best.shape, -1, dtype=np.int64)
        for j in range(num_children):
            c = cost_units[b, j]
            if c > units:
                continue
            candidate = best[in_code[j], : units + 1 - c] + weights[b, j]
            target = new[out_code[j], c:]
            better = candidate < target
            target[better] = candidate[better]
            chosen[out_code[j], c:][better] = j
        best = new
        back.append(chosen)
    lowest = int(np.ceil(low / step - 1e-9))
    band = best[:, max(lowest, 0) :]
    if not np.isfinite(band).any():
        return None
    code, offset = np.unravel_index(np.argmin(band), band.shape)
    unit = int(offset) + max(lowest, 0)
    path = np.empty(blocks, dtype=np.int64)
    for b in range(blocks - 1, -1, -1):
        j = int(back[b][code, unit])
        path[b] = j
        code, unit = in_code[j], unit - cost_units[b, j]
    return path


def _discrete(topology: Topology, chosen: np.ndarray, op_logits: torch.Tensor) -> DecodedArch:
    arch_code_a = topology.children[chosen].astype(np.int64)
    arch_code_c = op_logits.detach().float().cpu().argmax(-1).numpy().astype(np.int64)
    return DecodedArch(node_a=node_activation(topology, arch_code_a), arch_code_a=arch_code_a, arch_code_c=arch_code_c)


def decode(topology: Topology, path_probs: torch.Tensor, op_logits: torch.Tensor) -> DecodedArch:
    """The discrete architecture: best connected topology plus the argmax operation per path."""
    child_probs = topology.child_probabilities(path_probs.detach().float().cpu()).numpy()
    return _discrete(topology, best_topology(topology, child_probs), op_logits)


def decode_within_budget(
    topology: Topology,
    path_probs: torch.Tensor,
    op_logits: torch.Tensor,
    path_fractions: np.ndarray,
    budget: float,
    tolerance: float,
) -> DecodedArch:
    """The most probable connected topology whose memory fraction lies in ``[budget - tolerance, budget]``.

    ``path_fractions`` is each path's share of the full network's memory with the decoded
    operations, ``(blocks, P)``. DiNTS' own decode keeps a path when it is more likely on than
    off; after a short search the memory loss leaves every path probability on the same side of
    1/2, so a budget far from 1/2 decodes to nearly the smallest or the whole supernet. This decode
    keeps the search's preferences (probabilities) but honours the budget. Without any topology in
    the band: the most probable one under the budget, else DiNTS' own decode."""
    child_probs = topology.child_probabilities(path_probs.detach().float().cpu()).numpy()
    child_cost = path_fractions @ topology.children.T.astype(np.float64)
    for low, high in ((budget - tolerance, budget), (0.0, budget)):
        chosen = best_topology_in_band(topology, child_probs, child_cost, low, high)
        if chosen is not None:
            return _discrete(topology, chosen, op_logits)
    return _discrete(topology, best_topology(topology, child_probs), op_logits)
