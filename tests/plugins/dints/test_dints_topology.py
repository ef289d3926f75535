"""Decode: the dynamic program equals MONAI's Dijkstra decode, is optimal, and scales to D=5;
the budget decode is the optimum inside its memory band."""

from __future__ import annotations

import contextlib
import io
import itertools

import numpy as np
import pytest
import torch
from automl_seg_dints.topology import Topology, best_topology, best_topology_in_band, decode, decode_within_budget


def _monai_search_space(num_blocks: int, num_depths: int):
    from monai.networks.nets import TopologySearch

    with contextlib.redirect_stdout(io.StringIO()):
        return TopologySearch(channel_mul=0.0625, num_blocks=num_blocks, num_depths=num_depths)


@pytest.mark.parametrize(("num_depths", "num_blocks", "seeds"), [(3, 6, (0, 1, 2)), (4, 3, (3,))])
def test_decode_equals_monai(num_depths: int, num_blocks: int, seeds: tuple[int, ...]) -> None:
    pytest.importorskip("scipy")
    reference = _monai_search_space(num_blocks, num_depths)
    for seed in seeds:
        torch.manual_seed(seed)
        with torch.no_grad():
            reference.log_alpha_a.normal_(0, 2)
            reference.log_alpha_c.normal_(0, 1)
        node_a, arch_code_a, arch_code_c, _ = reference.decode()
        ours = decode(Topology(num_depths), torch.sigmoid(reference.log_alpha_a), reference.log_alpha_c)
        np.testing.assert_array_equal(ours.arch_code_a, arch_code_a)
        np.testing.assert_array_equal(ours.node_a, node_a)
        np.testing.assert_array_equal(ours.arch_code_c, arch_code_c)


def _connected(topology: Topology, chosen: np.ndarray) -> bool:
    return all(topology.child_in_code[b] == topology.child_out_code[a] for a, b in itertools.pairwise(chosen))


def test_dynamic_program_is_the_optimum_by_brute_force() -> None:
    topology = Topology(2)
    rng = np.random.default_rng(0)
    raw = torch.from_numpy(rng.uniform(0.05, 0.95, size=(3, topology.num_paths)).astype(np.float32))
    probs = topology.child_probabilities(raw).numpy()
    weights = -np.log(probs + 1e-5) + 1e-3
    feasible = [c for c in itertools.product(range(len(topology.children)), repeat=3) if _connected(topology, c)]
    brute = min(feasible, key=lambda c: sum(weights[b, j] for b, j in enumerate(c)))
    np.testing.assert_array_equal(best_topology(topology, probs), brute)


def test_decode_scales_to_five_depths() -> None:
    topology = Topology(5)
    torch.manual_seed(0)
    decoded = decode(topology, torch.rand(12, topology.num_paths), torch.randn(12, topology.num_paths, 5))
    assert decoded.arch_code_a.shape == (12, 13) and decoded.node_a.shape == (13, 5)
    chosen = [int("".join(map(str, row)), 2) - 1 for row in decoded.arch_code_a]
    assert _connected(topology, np.array(chosen))


@pytest.mark.parametrize(("low", "high"), [(0.3, 0.45), (0.0, 0.2), (0.7, 1.0)])
def test_band_program_is_the_optimum_in_the_band_by_brute_force(low: float, high: float) -> None:
    topology = Topology(2)
    rng = np.random.default_rng(1)
    raw = torch.from_numpy(rng.uniform(0.05, 0.95, size=(3, topology.num_paths)).astype(np.float32))
    probs = topology.child_probabilities(raw).numpy()
    path_cost = rng.integers(20, 120, size=(3, topology.num_paths)) / 1000  # on the grid: no rounding
    child_cost = path_cost @ topology.children.T
    weights = -np.log(probs + 1e-5) + 1e-3
    feasible = [c for c in itertools.product(range(len(topology.children)), repeat=3) if _connected(topology, c)]
    in_band = [c for c in feasible if low - 1e-9 <= sum(child_cost[b, j] for b, j in enumerate(c)) <= high + 1e-9]
    assert in_band  # the band is not trivially empty
    brute = min(in_band, key=lambda c: sum(weights[b, j] for b, j in enumerate(c)))
    np.testing.assert_array_equal(best_topology_in_band(topology, probs, child_cost, low, high), brute)


def test_band_program_says_when_the_band_is_empty() -> None:
    topology = Topology(2)
    probs = topology.child_probabilities(torch.full((2, topology.num_paths), 0.5)).numpy()
    child_cost = np.full((2, topology.num_paths), 0.1) @ topology.children.T
    assert best_topology_in_band(topology, probs, child_cost, 0.0, 0.05) is None  # every block costs >= 0.1


@pytest.mark.parametrize("budget", [0.2, 0.5, 0.8])
def test_budget_decode_tracks_the_budget_where_the_plain_decode_collapses(budget: float) -> None:
    """Every path a little unlikely (as after a short search under a small budget): DiNTS' decode keeps
    the fewest paths; the budget decode lands in its band, with the most probable paths kept."""
    topology = Topology(3)
    torch.manual_seed(0)
    path_probs = 0.3 + 0.1 * torch.rand(4, topology.num_paths)
    op_logits = torch.randn(4, topology.num_paths, 5)
    fractions = np.full((4, topology.num_paths), 1 / (4 * topology.num_paths))
    plain = decode(topology, path_probs, op_logits)
    assert (plain.arch_code_a * fractions).sum() < 0.2
    decoded = decode_within_budget(topology, path_probs, op_logits, fractions, budget, tolerance=0.1)
    assert budget - 0.1 - 1e-6 <= (decoded.arch_code_a * fractions).sum() <= budget + 1e-6
    np.testing.assert_array_equal(decoded.arch_code_c, plain.arch_code_c)
    chosen = [int("".join(map(str, row)), 2) - 1 for row in decoded.arch_code_a]
    assert _connected(topology, np.array(chosen))
