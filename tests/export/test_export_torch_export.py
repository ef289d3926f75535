"""The torch.export exporter on the spaces' own networks: dynamic shapes, a plain-torch load, options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from automl_seg.errors import ConfigError
from automl_seg.interfaces import ExportOptions
from automl_seg.plugins import PluginHost
from automl_seg.testing.fixtures import tiny_plan

#: loads a .pt2 and runs it with automl_seg and monai made unimportable: the artefact needs torch alone
PLAIN_TORCH_LOAD = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("automl_seg", "automl_seg_export", "automl_seg_dints", "automl_seg_fixed", "monai"):
            raise ImportError(f"{name} is refused in this check")
sys.meta_path.insert(0, Refuse())
import numpy as np, torch
program = torch.export.load(sys.argv[1])
x = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    np.save(sys.argv[3], program.module()(x).numpy())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("automl_seg", "monai")))
"""


def space_network(host: PluginHost, name: str) -> tuple[torch.nn.Module, int]:
    """The space's own network for a 32^3 patch (DiNTS: 2 blocks, 3 depths) and its total stride."""
    import random

    space = host.space(name)
    args = space.default_args(tiny_plan((32, 32, 32)), "quick")
    arch = {}
    if name == "dints":
        args["num_blocks"] = 2
        arch = space.sample_arch(args, random.Random(0))
    torch.manual_seed(0)
    stride = 2 ** (args["num_depths"] + 1) if name == "dints" else 2 ** (len(args["strides"]) - 1)
    return space.build_network(args, arch).eval(), stride


@pytest.mark.parametrize("name", ["fixed", "dints"])
def test_space_networks_export_with_dynamic_shapes(host: PluginHost, name: str, tmp_path: Path) -> None:
    net, stride = space_network(host, name)
    exporter = host.exporter("torch-export")
    path = tmp_path / f"{name}.pt2"
    facts = exporter.export(net, torch.zeros(1, 1, 32, 32, 32), path, ExportOptions(spatial_multiple=stride))
    assert facts["inputs"][0]["shape"] == ["batch", 1, *(f"{stride}*{a}_blocks" for a in ("depth", "height", "width"))]
    assert facts["outputs"][0]["shape"][:2] == ["batch", 3] and facts["compute_dtype"] == "float32"
    x = np.random.default_rng(0).standard_normal((3, 1, 2 * stride, 3 * stride, 2 * stride), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_TORCH_LOAD, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"  # neither automl_seg nor monai was imported
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() < 1e-4
    predictor = exporter.load(path, ["cpu"])
    assert predictor.providers == ["torch:cpu"] and np.abs(predictor(x) - expected).max() < 1e-4


@pytest.mark.parametrize("providers,message", [(["CPUExecutionProvider"], "torch device"), (["cuda:0"], None)])
def test_load_takes_torch_devices(host: PluginHost, providers: list[str], message: str | None, tmp_path: Path) -> None:
    if message is None and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: 'cuda:0' is valid here")
    with pytest.raises(ConfigError, match=message or "no CUDA GPU here"):
        host.exporter("torch-export").load(tmp_path / "missing.pt2", providers)
