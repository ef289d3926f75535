"""Decode: the dynamic program equals MONAI's Dijkstra decode, is optimal, and scales to D=5."""

from __future__ import annotations

import contextlib
import io
import itertools

import numpy as np
import pytest
import torch
from automl_seg_dints.topology import Topology, best_topology, decode


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
