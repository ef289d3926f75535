"""Small networks, a plan and a registry world shared by the export tests (built once per module)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from automl_seg.data.models import Plan
from automl_seg.plugins import PluginHost, load_plugins
from automl_seg.testing.fixtures import tiny_plan as kit_tiny_plan
from automl_seg.testing.fixtures import tiny_prepared_data


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


def dints_arch(num_blocks: int, num_depths: int) -> dict[str, list]:
    """Every path active, operation 0 everywhere, in MONAI's arch_code layout."""
    from monai.networks.nets import TopologyInstance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "arch_code not provided": we only read the path count
        paths = TopologyInstance(num_blocks=num_blocks, num_depths=num_depths, arch_code=None).arch_code_a.shape[1]
    return {
        "arch_code_a": [[1] * paths] * num_blocks,
        "arch_code_c": [[0] * paths] * num_blocks,
        "node_a": [[1] * num_depths] * (num_blocks + 1),
    }


def register_models(
    root: Path, plan: Plan, fingerprint_hash: str, host: PluginHost, arch_seed: int | None = None
) -> dict:
    """A registry under ``root`` holding a fixed and a dints model (seeded weights, quick preset) for
    ``plan``, and a record without weights: their refs by space (``bare``). The DiNTS architecture is
    every path with operation 0, or a seeded random one (``arch_seed``)."""
    import random

    from automl_seg_registry import ArchitectureRecord, DatasetRef, Registry, SpaceRef, StrategyRef

    refs = {}
    with Registry.open(root / "registry") as registry:
        for space_name in ("fixed", "dints"):
            space = host.space(space_name)
            args = space.default_args(plan, "quick")
            arch = {}
            if space_name == "dints":
                arch = (
                    dints_arch(args["num_blocks"], args["num_depths"])
                    if arch_seed is None
                    else space.sample_arch(args, random.Random(arch_seed))
                )
            torch.manual_seed(0)
            weights = root / f"{space_name}.pt"
            torch.save(space.build_network(args, arch).state_dict(), weights)
            record = ArchitectureRecord(
                name=f"{space_name}-tiny",
                space=SpaceRef(name=space.name, version=str(space.version), args=args),
                arch=arch,
                strategy=StrategyRef(name=space_name),
                dataset=DatasetRef(
                    name=plan.dataset, fingerprint_hash=fingerprint_hash, plan=plan.model_dump(mode="json")
                ),
                seed=0,
            )
            refs[space_name] = registry.register(record, files={"weights": (weights, "weights")}).ref
        bare = ArchitectureRecord(**{**record.model_dump(exclude={"artifacts", "version"}), "name": "no-weights"})
        refs["bare"] = registry.register(bare).ref
    return refs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, host: PluginHost) -> dict:
    """A data root with the tiny synthetic task and a registry holding a fixed and a dints model with weights."""
    root = tmp_path_factory.mktemp("export-world")
    data = tiny_prepared_data(root / "data")
    refs = register_models(root, data.plan, data.fingerprint.content_hash, host)
    return {"data_root": root / "data", "registry": root / "registry", "refs": refs, "host": host}
