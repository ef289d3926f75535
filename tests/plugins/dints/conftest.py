"""One torch thread per test (the CI machine's 2 cores are shared, and oversubscribed OpenMP spins);
MONAI's own discrete DiNTS for a payload, the reference our networks are held to."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _monai_discrete_network(args: Mapping[str, Any], payload: Mapping[str, Any]) -> torch.nn.Module:
    """Plain ``monai.networks.nets.DiNTS`` around a ``TopologyInstance`` of ``payload`` (a stored arch)."""
    from monai.networks.nets import DiNTS, TopologyInstance

    with contextlib.redirect_stdout(io.StringIO()):
        instance = TopologyInstance(
            arch_code=[np.array(payload["arch_code_a"]), np.array(payload["arch_code_c"])],
            channel_mul=args["channel_mul"],
            num_blocks=args["num_blocks"],
            num_depths=args["num_depths"],
        )
    return DiNTS(instance, args["in_channels"], args["num_classes"], node_a=np.array(payload["node_a"]))


@pytest.fixture
def monai_discrete_network() -> Callable[[Mapping[str, Any], Mapping[str, Any]], torch.nn.Module]:
    return _monai_discrete_network
