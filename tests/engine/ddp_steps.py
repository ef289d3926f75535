"""One training step of the fixed network and one DiNTS search step (weights, then architecture),
on one process or as a rank of a DDP job: the gradients of the weights and architecture parameters.

Both run in float64: a float32 step has kinks (LeakyReLU inputs within rounding of zero) that
rounding differences between a batch of two and two batches of one (oneDNN takes the batch-1
convolutions, ``automl_seg.onednn``) can move to the other side, changing a gradient by far more
than rounding; in float64 the two computations agree to rounding, so any larger difference is DDP's.

Run as a script by ``test_engine_distributed`` (``ddp_steps.py DATA_ROOT OUT``, two processes under
torch's elastic agent: each rank steps on its half of the global batch) and imported by it for the
one-process reference on the whole batch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from automl_seg.engine.distributed import Distributed, process_group

GLOBAL_BATCH = 2
PATCH = (16, 16, 16)


@contextmanager
def float64() -> Iterator[None]:
    """Tensors and parameters created inside are float64 (the default dtype, restored on exit)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def global_batch() -> dict[str, torch.Tensor]:
    """The same seeded batch of two volumes on every process."""
    generator = torch.Generator().manual_seed(7)
    return {
        "image": torch.randn(GLOBAL_BATCH, 1, *PATCH, generator=generator),
        "label": torch.randint(0, 3, (GLOBAL_BATCH, 1, *PATCH), generator=generator),
    }


def my_share(batch: dict[str, torch.Tensor], dist: Distributed) -> dict[str, torch.Tensor]:
    per_rank = GLOBAL_BATCH // dist.world_size
    return {key: value[dist.rank * per_rank : (dist.rank + 1) * per_rank] for key, value in batch.items()}


def prepared(data_root: Path) -> Any:
    from automl_seg.config import DataSettings
    from automl_seg.data import prepare_data

    return prepare_data(DataSettings(dataset="Task99_Synthetic", data_root=data_root, patch_size=PATCH), progress=False)


@float64()
def fixed_step(dist: Distributed, data_root: Path) -> dict[str, torch.Tensor]:
    """The engine's training step (``automl_seg.engine.train``) on the fixed space's DynUNet."""
    from automl_seg.engine.devices import seed_everything
    from automl_seg.engine.loss import segmentation_loss
    from automl_seg.engine.settings import train_settings
    from automl_seg.engine.train import _step, make_optimizer
    from automl_seg.plugins import load_plugins

    space = load_plugins().space("fixed")
    settings = train_settings("quick", overrides={"lr": 0.1, "grad_clip": None})
    seed_everything(0)
    network = space.build_network(space.default_args(prepared(data_root).plan, "quick"), {})
    model = dist.wrap(network, static_graph=True)  # as train_network wraps it
    optimizer = make_optimizer(network, settings)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss = segmentation_loss()
    _step(model, my_share(global_batch(), dist), loss, optimizer, scaler, settings, torch.device("cpu"))
    return {f"grad:{name}": p.grad.clone() for name, p in network.named_parameters() if p.grad is not None}


@float64()
def dints_step(dist: Distributed, data_root: Path) -> dict[str, torch.Tensor]:
    """A DiNTS weight step then an architecture step (``automl_seg_dints.search``) on the supernet."""
    from automl_seg_dints.search import DintsSearch
    from automl_seg_dints.space import DintsSpace
    from automl_seg_dints.strategy import DintsStrategy

    from automl_seg.interfaces import RunInfo, SearchContext

    space, strategy = DintsSpace(), DintsStrategy()
    data = prepared(data_root)
    args = {**space.default_args(data.plan, "quick"), "num_blocks": 3, "num_depths": 3, "channel_mul": 0.125}
    settings = strategy.settings("quick", {"batch_size": 1, "measure_memory": False, "epochs": 2, "warmup_epochs": 1})
    ctx = SearchContext(
        space=space, space_args=args, data=data, settings=settings, seed=3, device=torch.device("cpu"),
        workdir=data_root / "unused", resume=False, run=RunInfo(run_id="t", kind="search"), dist=dist,
    )  # fmt: skip
    search = DintsSearch(ctx)
    state = search.new_state()
    batch = my_share(global_batch(), dist)
    search._weight_step(state, batch)
    arch_ids = {id(p) for p in search.space.arch_parameters()}
    named = list(search.model.named_parameters())
    out = {f"grad:{n}": p.grad.clone() for n, p in named if p.grad is not None and id(p) not in arch_ids}
    search._arch_step(state, batch, weight=0.5)
    out.update({f"arch_grad:{n}": p.grad.clone() for n, p in named if id(p) in arch_ids})
    return out


def main(data_root: Path, out: Path) -> None:
    torch.set_num_threads(1)
    with process_group("cpu") as dist:
        results = {"fixed": fixed_step(dist, data_root), "dints": dints_step(dist, data_root)}
        if dist.is_main:
            torch.save({"world_size": dist.world_size, **results}, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
