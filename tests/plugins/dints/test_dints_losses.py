"""Loss terms, the ramp and the memory estimator, checked against MONAI's definitions."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from automl_seg_dints.losses import ArchLossTerms, entropy_of_ops, memory_loss, topology_loss
from automl_seg_dints.supernet import FastTopologySearch, MemoryEstimator


@pytest.fixture(scope="module")
def spaces():
    """Our search space and MONAI's, with the same parameters."""
    from monai.networks.nets import TopologySearch

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        reference = TopologySearch(channel_mul=0.125, num_blocks=3, num_depths=3)
    with torch.no_grad():
        reference.log_alpha_a.normal_(0, 1)
        reference.log_alpha_c.normal_(0, 1)
    ours = FastTopologySearch(3, 3, 0.125)
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def test_topology_loss_equals_monai(spaces) -> None:
    ours, reference = spaces
    child_probs, _ = reference.get_prob_a(child=True)
    expected = reference.get_topology_entropy(child_probs)
    got = topology_loss(ours, ours.topology.child_probabilities(ours.raw_path_probs()))
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_memory_fraction_equals_monai(spaces) -> None:
    ours, reference = spaces
    shape = (2, 1, 32, 32, 32)
    expected = reference.get_ram_cost_usage(shape) / reference.get_ram_cost_usage(shape, full=True)
    estimator = MemoryEstimator(ours, batch_size=2, patch_size=(32, 32, 32))
    got = estimator.usage_mb(ours.path_probs(), ours.op_probs()) / estimator.full_mb(ours.op_probs())
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_entropies_and_memory_loss() -> None:
    uniform = torch.zeros(2, 4, 5)
    # mean over every element, as the DiNTS tutorial: log(5) per path spread over 5 entries
    assert float(entropy_of_ops(uniform)) == pytest.approx(math.log(5) / 5, rel=1e-6)
    assert float(entropy_of_ops(torch.tensor([[[50.0, 0, 0, 0, 0]]]))) == pytest.approx(0.0, abs=1e-6)
    assert float(memory_loss(torch.tensor(0.3), 0.5)) == pytest.approx(0.2)
    assert float(memory_loss(torch.tensor(0.7), 0.5)) == pytest.approx(0.2)


def test_ramp_scales_every_term() -> None:
    terms = ArchLossTerms(*(torch.tensor(v) for v in (1.0, 2.0, 3.0, 100.0, 0.5, 1.0)))
    assert float(terms.combined(0.0, 0.01)) == 0.0
    assert float(terms.combined(0.5, 0.01)) == pytest.approx(0.5 * (1 + 2 + 3 + 1))
    assert float(terms.combined(1.0, 0.0)) == pytest.approx(6.0)


def test_estimator_grows_with_every_active_path() -> None:
    space = FastTopologySearch(3, 3, 0.125)
    estimator = MemoryEstimator(space, batch_size=2, patch_size=(32, 32, 32))
    rng = np.random.default_rng(0)
    ops = rng.integers(0, 5, size=(3, 7))
    active = np.zeros((3, 7), dtype=np.int64)
    previous = estimator.discrete_mb(active, ops)
    for index in rng.permutation(21):
        active.flat[index] = 1
        current = estimator.discrete_mb(active, ops)
        assert current > previous
        previous = current
    assert estimator.discrete_fraction(active, ops) == pytest.approx(1.0)
    assert 0 < estimator.minimum_fraction() < 0.1
