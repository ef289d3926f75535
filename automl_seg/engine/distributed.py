"""The distributed context: this process' place in a DDP job, and the few collectives a run needs.

One process is the default: ``Distributed()`` is a world of one whose collectives hand their input
back and whose ``wrap`` returns the model itself, so code written against it runs unchanged alone.
Under torchrun (or ``--nproc N``, ``automl_seg.engine.launch``) ``process_group`` joins the job from
the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``):
NCCL with one GPU per rank on CUDA, gloo on the CPU, and a collective timeout
(``AUTOML_SEG_DIST_TIMEOUT`` seconds) so that a rank that died or hangs ends the job in bounded
time instead of blocking the others forever.

Strategies get it as ``SearchContext.dist``; the engine's training and evaluation take it as
``dist``. Rank 0 alone writes (checkpoints, registry, logs, progress); every rank reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from automl_seg.errors import ConfigError

T = TypeVar("T")

TIMEOUT_ENV = "AUTOML_SEG_DIST_TIMEOUT"
#: seconds a collective waits for the other ranks before the job fails (a hung or lost rank)
DEFAULT_TIMEOUT_S = 600.0


def collective_timeout() -> float:
    """The collective timeout in seconds: ``$AUTOML_SEG_DIST_TIMEOUT``, else ``DEFAULT_TIMEOUT_S``."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ConfigError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds; set it to e.g. 600")
    return seconds


def world_size_from_env() -> int:
    """The job's size as torchrun announces it (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass(frozen=True)
class Distributed:
    """Rank and world of this process, with the collectives of a data-parallel run.

    Every collective must be called by every rank in the same order (they block until all have)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: where collectives' tensors live: the rank's GPU for NCCL, the CPU for gloo
    comm_device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        """Whether there are other ranks (a world of one needs no communication)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one rank that logs, shows progress and writes checkpoints and the registry."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: ``cuda:LOCAL_RANK`` on CUDA (one GPU per rank), else ``device``."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def rank_seed(self, seed: int) -> int:
        """A seed of this rank's own, derived from the run's ``seed`` (rank 0 keeps it: a world of one
        draws what a single process always drew)."""
        return seed if self.rank == 0 else (seed * 1_000_003 + self.rank * 7_919) % 2**31

    def wrap(
        self,
        model: nn.Module,
        *,
        find_unused_parameters: bool = False,
        static_graph: bool = False,
        ignore: Iterable[str] = (),
    ) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (gradients averaged over ranks during backward;
        rank 0's weights broadcast at construction); ``model`` itself in a world of one.

        A network that leaves parameters unused needs ``find_unused_parameters`` (searched every
        step) or, when the same ones are unused every step, ``static_graph`` (found once). ``ignore``
        names parameters DDP leaves alone (e.g. architecture parameters a strategy syncs itself)."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ignored = list(ignore)
        if ignored:
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
        device = next(model.parameters()).device
        return DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters,
            static_graph=static_graph,
        )

    def shard(self, items: Sequence[T], *, seed: int | None = None, pad: bool = True) -> list[T]:
        """This rank's share of ``items``, dealt as ``DistributedSampler`` deals indices: a permutation
        seeded by ``seed`` (the same on every rank), padded by repeating items so that every rank gets
        as many (``pad``: equal step counts, which DDP needs), then every ``world_size``-th item from
        ``rank``. A world of one gets ``items`` unchanged."""
        order = list(items)
        if not self.enabled or not order:
            return order
        if seed is not None:
            order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
        if pad:
            total = -(-len(order) // self.world_size) * self.world_size
            order = [order[i % len(order)] for i in range(total)]
        return order[self.rank :: self.world_size]

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace every gradient of ``params`` by its mean over the ranks (what DDP does for the
        parameters it wraps), in one all-reduce. Every rank must hold gradients for the same ones."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.enabled or not grads:
            return
        import torch.distributed as dist

        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def mean(self, values: Mapping[str, float]) -> dict[str, float]:
        """Each value's mean over the ranks (every rank passes the same keys), e.g. epoch losses."""
        if not self.enabled:
            return {key: float(value) for key, value in values.items()}
        import torch.distributed as dist

        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(tensor)
        return {key: float(value) / self.world_size for key, value in zip(keys, tensor.tolist(), strict=True)}

    def broadcast(self, obj: T, src: int = 0) -> T:
        """Rank ``src``'s ``obj`` on every rank (any picklable value)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=src, device=self.comm_device)
        return box[0]

    def gather(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        """Wait until every rank arrives here."""
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others do (it fills caches the others then read)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


@contextmanager
def process_group(device: torch.device | str) -> Iterator[Distributed]:
    """The job's distributed context for a run on ``device`` (``auto``, ``cpu``, ``cuda`` or a torch
    device): a process group joined from torchrun's environment when it started several processes
    (left again on exit), else a world of one. A default group already initialised (by a caller or
    a test) is used as it is and left open."""
    import torch.distributed as dist

    from automl_seg.engine.devices import resolve_device

    device = device if isinstance(device, torch.device) else resolve_device(device)

    if dist.is_available() and dist.is_initialized():
        yield _context()
        return
    if world_size_from_env() <= 1:
        yield Distributed()
        return
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run on one process (drop --nproc)")
    cuda = device.type == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {local_rank} has no GPU of its own ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        timeout=timedelta(seconds=collective_timeout()),
        device_id=torch.device("cuda", local_rank) if cuda else None,
    )
    try:
        yield _context()
        # every rank reaches the end before any leaves: a rank tearing gloo down while another still
        # finishes (rank 0 saving, say) can abort the other's transport threads at exit
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _context() -> Distributed:
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    cuda = dist.get_backend() == "nccl"
    return Distributed(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        comm_device=torch.device("cuda", local_rank) if cuda else torch.device("cpu"),
    )
