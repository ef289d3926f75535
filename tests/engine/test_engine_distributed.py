"""DDP on the CPU (gloo, 2 processes x 1 thread): one step at world size 2 computes what one process
computes on the same global batch, for the fixed network and the DiNTS supernet."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from automl_seg.data.synthetic import make_synthetic_msd
from automl_seg.engine.distributed import Distributed

STEPS_SCRIPT = Path(__file__).with_name("ddp_steps.py")


def _steps_module() -> Any:
    spec = importlib.util.spec_from_file_location("ddp_steps", STEPS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _launch(nproc: int, *args: str) -> None:
    """``python STEPS_SCRIPT *args`` as ``nproc`` ranks under torch's elastic agent."""
    from torch.distributed.launcher.api import elastic_launch

    from automl_seg.engine.launch import local_launch_config

    elastic_launch(local_launch_config(nproc), sys.executable)(str(STEPS_SCRIPT), *args)


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The step results of two ranks (saved by rank 0) and of this process on the whole batch."""
    root = tmp_path_factory.mktemp("ddp")
    make_synthetic_msd(root / "data", num_cases=4, shape=(16, 16, 16))
    _launch(2, str(root / "data"), str(root / "ranks.pt"))
    module = _steps_module()
    single = Distributed()
    return {
        "ranks": torch.load(root / "ranks.pt", weights_only=True),
        "fixed": module.fixed_step(single, root / "data"),
        "dints": module.dints_step(single, root / "data"),
    }


def _assert_same(one: dict[str, torch.Tensor], two: dict[str, torch.Tensor]) -> None:
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-9, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.timeout(300)
def test_fixed_network_step_at_world_size_2_equals_one_process(steps: dict[str, Any]) -> None:
    assert steps["ranks"]["world_size"] == 2
    assert any(name.startswith("grad:") for name in steps["fixed"])
    _assert_same(steps["fixed"], steps["ranks"]["fixed"])


@pytest.mark.timeout(300)
def test_dints_supernet_step_at_world_size_2_equals_one_process(steps: dict[str, Any]) -> None:
    ranks, single = steps["ranks"]["dints"], steps["dints"]
    assert any(name.startswith("arch_grad:") for name in single) and any(name.startswith("grad:") for name in single)
    _assert_same(single, ranks)
