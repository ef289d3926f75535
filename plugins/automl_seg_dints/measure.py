"""Real peak training memory of a discrete DiNTS network (what the estimate is checked against).

On CUDA: ``torch.cuda.max_memory_allocated`` over two training steps, less what was allocated before.
On CPU the searching process' RSS is useless (its allocator pools and library caches dominate), so
the network is trained in a fresh interpreter whose allocator returns freed memory at once
(``automl_seg.memory.EXACT_RSS_ENV``: RSS then tracks live tensors, as CUDA's count does, and repeats
to within 0.2 MB): one step at the smallest admissible patch first
(one-time library initialisation, weights, gradients and optimiser state), then the kernel's
peak-RSS counter is reset (``/proc/self/clear_refs``) and two steps at the real patch and batch
are run. The figure is that peak's growth plus the exact bytes of weights, gradients and momentum,
which is what CUDA's allocator count holds too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from automl_seg.api import current_rss_mb, exact_rss_environment, peak_rss_mb, reset_peak_rss
from automl_seg.errors import UserError
from automl_seg_dints.space import build_discrete_network

_STEPS = 2
_TIMEOUT_S = 900


def _trainer(args: Mapping[str, Any], arch: Mapping[str, Any], device: torch.device) -> tuple[Any, Any]:
    """The discrete network and a function running ``steps`` SGD steps on random data of a given size."""
    torch.manual_seed(0)
    net = build_discrete_network(args, arch).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def train(batch_size: int, patch: Sequence[int], steps: int) -> None:
        x = torch.randn(batch_size, int(args["in_channels"]), *patch, device=device)
        target = torch.randint(0, int(args["num_classes"]), (batch_size, *patch), device=device)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=False)
            loss = torch.nn.functional.cross_entropy(net(x), target)
            loss.backward()
            optimizer.step()

    return net, train


def _state_mb(net: torch.nn.Module) -> float:
    """Weights + gradients + SGD momentum."""
    return 3 * sum(p.numel() * p.element_size() for p in net.parameters()) / 2**20


def measure_training_memory_mb(
    args: Mapping[str, Any], arch: Mapping[str, Any], batch_size: int, patch: Sequence[int], device: torch.device
) -> float:
    """Peak training memory (MB) of the discrete network at this batch and patch size."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        net, train = _trainer(args, arch, device)
        train(batch_size, patch, _STEPS)
        torch.cuda.synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        del net, train
        torch.cuda.empty_cache()
        return peak
    request = json.dumps({"args": dict(args), "arch": dict(arch), "batch_size": batch_size, "patch": list(patch)})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "automl_seg_dints.measure"], input=request, capture_output=True, text=True,
            timeout=_TIMEOUT_S, env=exact_rss_environment(),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise UserError(
            f"measuring the architecture's training memory took over {_TIMEOUT_S} s; set `measure_memory: false` "
            "in the config's strategy section to skip it"
        ) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"measuring the architecture's training memory failed: {last}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def _main() -> None:
    request = json.loads(sys.stdin.read())
    torch.set_num_threads(1)  # the figure does not depend on threads; shared CPUs make extra ones slow
    args = request["args"]
    net, train = _trainer(args, request["arch"], torch.device("cpu"))
    smallest = 2 ** (int(args["num_depths"]) + 1)
    train(1, [smallest] * len(request["patch"]), 1)
    base = current_rss_mb()
    if not reset_peak_rss():
        raise OSError("cannot reset the peak RSS counter (/proc/self/clear_refs); measure on Linux")
    train(request["batch_size"], request["patch"], _STEPS)
    sys.stdout.write(json.dumps({"peak_mb": peak_rss_mb() - base + _state_mb(net)}) + "\n")


if __name__ == "__main__":
    _main()
