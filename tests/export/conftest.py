"""Small networks and a plan shared by the export tests (built once per module: tracing costs seconds)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from automl_seg.data.models import Plan
from automl_seg.plugins import PluginHost, load_plugins
from automl_seg.testing.fixtures import tiny_plan as kit_tiny_plan


def small_dints() -> nn.Module:
    """A MONAI DiNTS instance (2 depths: total stride 4) with a fixed topology and few channels."""
    from monai.networks.nets import DiNTS, TopologyInstance

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "arch_code not provided": the full topology is what we want
        topology = TopologyInstance(channel_mul=0.25, num_blocks=3, num_depths=2, use_downsample=True)
        return DiNTS(topology, in_channels=1, num_classes=3, use_downsample=True).eval()


def small_dynunet() -> nn.Module:
    """The fixed-baseline family: MONAI DynUNet, total stride 4."""
    from monai.networks.nets import DynUNet

    torch.manual_seed(0)
    return DynUNet(
        3, 1, 3, kernel_size=[3, 3, 3], strides=[1, 2, 2], upsample_kernel_size=[2, 2], filters=[8, 16, 32]
    ).eval()


NETWORKS = {"dints": small_dints, "dynunet": small_dynunet}


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins()


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def network(request: pytest.FixtureRequest) -> tuple[str, nn.Module]:
    return request.param, NETWORKS[request.param]()


@pytest.fixture(scope="module")
def dynunet() -> nn.Module:
    return small_dynunet()


@pytest.fixture
def tiny_plan() -> Plan:
    labels = {0: "background", 1: "anterior", 2: "posterior"}
    return kit_tiny_plan((16, 16, 16)).model_copy(update={"labels": labels, "sw_overlap": 0.25})
