"""Training a network from scratch: DiceCE loss (over every output of a deeply supervised network,
``automl_seg.engine.loss``), SGD/AdamW with a schedule, clipping, AMP on CUDA, a checkpoint every
epoch and an exact resume.

Reproducibility: every epoch draws its batches from a loader seeded with ``(seed, epoch, pass)``,
so the data an epoch sees never depends on what ran before it in this process, and the checkpoint
holds the model, optimizer, scheduler, AMP scaler and RNG states. A resumed CPU run therefore ends
with the same weights as an uninterrupted one.

In a DDP job (``dist``) the network trains wrapped in DistributedDataParallel: every rank draws
batches of ``batch_size`` from its shard of the training cases (dealt anew each epoch and pass,
with augmentation seeded per rank), so a step sees ``world_size * batch_size`` volumes; validation
shards the cases. Rank 0 alone writes the checkpoint, which holds every rank's RNG states, and every
rank resumes from it (at the same world size: the shards depend on it).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from automl_seg.engine.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from automl_seg.engine.devices import rng_states, seed_everything, set_rng_states
from automl_seg.engine.distributed import Distributed
from automl_seg.engine.evaluate import EvalReport, evaluate_cases
from automl_seg.engine.loss import segmentation_loss, training_loss
from automl_seg.engine.precision import grad_scaler, mixed_precision
from automl_seg.engine.settings import Schedule, TrainSettings
from automl_seg.errors import UserError
from automl_seg.memory import device_peak_mb, reset_peak
from automl_seg.progress import progress_bar

if TYPE_CHECKING:
    from automl_seg.data.prepared import PreparedData

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, Mapping[str, float]], None]


@dataclass
class TrainResult:
    """Final weights (on CPU), the per-epoch history and the run's cost."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, Any]]
    train_time_s: float
    peak_memory_mb: float
    params: int
    last_eval: EvalReport | None = None


def count_params(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def make_optimizer(network: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.SGD(
        network.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
        nesterov=settings.momentum > 0,
    )


#: nnU-Net's poly schedule exponent
POLY_POWER = 0.9


def lr_factor(schedule: Schedule, progress: float) -> float:
    """The learning rate's factor at ``progress`` (0 at the start, 1 at the end) of a run: poly
    (nnU-Net, power 0.9), cosine to zero, or constant. The one schedule of the engine and plugins."""
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "poly":
        return (1 - progress) ** POLY_POWER
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def make_scheduler(
    optimizer: torch.optim.Optimizer, settings: TrainSettings, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate factor: a linear warm-up over ``warmup_steps``, then ``lr_factor`` of
    the schedule over the remaining steps."""
    warmup = min(settings.warmup_steps, max(total_steps - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return lr_factor(settings.schedule, (step - warmup) / max(total_steps - warmup, 1))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def epoch_batches(
    data: PreparedData, settings: TrainSettings, seed: int, epoch: int, steps: int, dist: Distributed | None = None
) -> Iterator[dict[str, Any]]:
    """``steps`` training batches for ``epoch``, from loaders seeded by (seed, epoch, pass); in a DDP
    job from this rank's shard of the training cases."""
    dist = dist or Distributed()
    produced, passes = 0, 0
    while produced < steps:
        loader = _train_loader(data, settings, dist, _mix(seed, epoch, passes))
        for batch in loader:
            yield batch
            produced += 1
            if produced == steps:
                return
        passes += 1


def _mix(seed: int, epoch: int, passes: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + passes) % 2**31


def _train_loader(data: PreparedData, settings: TrainSettings, dist: Distributed, seed: int) -> Any:
    """The loader of one pass: all training cases, or in a DDP job this rank's shard of them (dealt by
    ``seed``, the same on every rank) with augmentation seeded for the rank."""
    augmentation = settings.augmentation()
    if not dist.enabled:
        return data.train_loader(batch_size=settings.batch_size, shuffle=True, seed=seed, augmentation=augmentation)
    cases = dist.shard(data.train_cases, seed=seed)
    return data.train_loader(
        cases, batch_size=settings.batch_size, shuffle=True, seed=dist.rank_seed(seed), augmentation=augmentation
    )


def steps_per_epoch(data: PreparedData, settings: TrainSettings, dist: Distributed | None = None) -> int:
    """Steps of an epoch: ``iterations``, else one pass over the training cases (a rank's shard in DDP)."""
    if settings.iterations is not None:
        return settings.iterations
    cases = (dist or Distributed()).shard(data.train_cases)
    return len(data.train_loader(cases, batch_size=settings.batch_size, shuffle=False))


def validate(
    network: nn.Module,
    data: PreparedData,
    settings: TrainSettings,
    device: torch.device,
    dist: Distributed | None = None,
) -> EvalReport:
    cases = data.val_cases[: settings.val_cases] if settings.val_cases else data.val_cases
    network.eval()
    with mixed_precision(device, settings.amp):
        report = evaluate_cases(network, data, device, settings.sw_batch_size, cases=cases, dist=dist)
    network.train()
    return report


def train_network(
    network: nn.Module,
    data: PreparedData,
    settings: TrainSettings,
    *,
    device: torch.device,
    seed: int,
    workdir: Path,
    resume: bool = False,
    epoch_ended: EpochCallback = lambda epoch, metrics: None,
    progress: bool = True,
    dist: Distributed | None = None,
) -> TrainResult:
    """Train ``network`` on ``data``'s training split; checkpoint to ``workdir`` after every epoch.

    ``resume`` continues from ``workdir``'s checkpoint (a clear error when there is none).
    ``epoch_ended(epoch, metrics)`` runs after each epoch's checkpoint is written, so an observer
    that stops the run (``RunStopped``) leaves a resumable state behind. ``dist``: the DDP job this
    process is a rank of (rank 0 alone writes, logs and shows progress)."""
    dist = dist or Distributed()
    seed_everything(seed)
    network.to(device).train()
    # the same weights on every rank, gradients averaged over ranks; a discrete network may leave
    # the same parameters unused in every step (DiNTS: the pruned paths)
    model = dist.wrap(network, static_graph=True)
    optimizer = make_optimizer(network, settings)
    steps = steps_per_epoch(data, settings, dist)
    scheduler = make_scheduler(optimizer, settings, total_steps=steps * settings.epochs)
    scaler = grad_scaler(device, settings.amp)
    loss_fn = segmentation_loss()
    history: list[dict[str, Any]] = []
    start_epoch, elapsed = 0, 0.0
    if resume:
        start_epoch, history, elapsed = _restore(workdir, network, optimizer, scheduler, scaler, settings, dist)
    elif has_checkpoint(workdir):
        log.info("ignoring the old checkpoint in %s (no --resume): starting afresh", workdir)
    reset_peak(device)  # this run's peak, not an earlier trial's in the same process
    last_eval: EvalReport | None = None
    with progress_bar(progress and dist.is_main, show_loss=True) as bar:
        task = bar.add_task("training", total=settings.epochs * steps, completed=start_epoch * steps, loss=float("nan"))
        for epoch in range(start_epoch, settings.epochs):
            began = time.perf_counter()
            losses = []
            for batch in epoch_batches(data, settings, seed, epoch, steps, dist):
                loss = _step(model, batch, loss_fn, optimizer, scaler, settings, device)
                scheduler.step()
                losses.append(loss)
                bar.update(task, advance=1, loss=loss, description=f"epoch {epoch + 1}/{settings.epochs}")
            validated = (epoch + 1) % settings.val_every == 0 or epoch + 1 == settings.epochs
            evaluation = validate(network, data, settings, device, dist) if validated else None
            last_eval = evaluation if evaluation is not None else last_eval
            seconds = time.perf_counter() - began
            elapsed += seconds
            losses = [dist.mean({"loss": sum(losses) / len(losses)})["loss"]] if dist.enabled else losses
            row = _epoch_row(epoch + 1, losses, optimizer, evaluation, seconds, device)
            if not math.isfinite(row["loss"]):
                raise UserError(f"training diverged at epoch {epoch + 1} (loss {row['loss']}); lower --lr")
            history.append(row)
            log.info(
                "epoch %d/%d: loss %.4f%s, %.1fs",
                epoch + 1, settings.epochs, row["loss"],
                "" if row["val_dice"] is None else f", val Dice {row['val_dice']:.3f}", row["time_s"],
            )  # fmt: skip
            _save(workdir, epoch + 1, network, optimizer, scheduler, scaler, history, elapsed, settings, dist)
            epoch_ended(epoch + 1, {k: float(v) for k, v in row.items() if isinstance(v, (int, float))})
    if last_eval is None and settings.epochs == start_epoch:  # resumed a finished run: score it again
        last_eval = validate(network, data, settings, device, dist)
    return TrainResult(
        state_dict={k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
        history=history,
        train_time_s=elapsed,
        peak_memory_mb=device_peak_mb(device),
        params=count_params(network),
        last_eval=last_eval,
    )


def _epoch_row(
    epoch: int,
    losses: list[float],
    optimizer: torch.optim.Optimizer,
    evaluation: EvalReport | None,
    seconds: float,
    device: torch.device,
) -> dict[str, Any]:
    """One epoch of the training history: mean loss, learning rate, validation Dice (when validated), time, memory."""
    row: dict[str, Any] = {
        "epoch": epoch,
        "loss": float(sum(losses) / len(losses)),
        "lr": float(optimizer.param_groups[0]["lr"]),
        "val_dice": None if evaluation is None else evaluation.dice_mean,
    }
    if evaluation is not None:
        row.update({f"val_dice_{name}": value for name, value in evaluation.dice_per_class.items()})
    row["time_s"] = round(seconds, 3)
    row["memory_mb"] = round(device_peak_mb(device), 1)
    return row


def _step(
    network: nn.Module,
    batch: Mapping[str, Any],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    settings: TrainSettings,
    device: torch.device,
) -> float:
    image = torch.as_tensor(batch["image"]).to(device)
    label = torch.as_tensor(batch["label"]).to(device)
    optimizer.zero_grad(set_to_none=True)
    with mixed_precision(device, settings.amp):
        logits = network(image)
    loss = training_loss(loss_fn, logits, label)
    scaler.scale(loss).backward()
    if settings.grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(network.parameters(), settings.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def _save(
    workdir: Path,
    epochs_done: int,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    history: list[dict[str, Any]],
    elapsed: float,
    settings: TrainSettings,
    dist: Distributed,
) -> None:
    """Rank 0 writes the checkpoint, with every rank's RNG states (gathered: a collective)."""
    states = dist.gather(rng_states())
    if not dist.is_main:
        return
    save_checkpoint(
        workdir,
        {
            "epochs_done": epochs_done,
            "model": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": states[0],
            **({"world_size": dist.world_size, "rank_rng": states} if dist.enabled else {}),
            "history": history,
            "elapsed_s": elapsed,
            "settings": settings.model_dump(mode="json"),
        },
    )


def _restore(
    workdir: Path,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    settings: TrainSettings,
    dist: Distributed,
) -> tuple[int, list[dict[str, Any]], float]:
    state = load_checkpoint(workdir)
    if state.get("settings") != settings.model_dump(mode="json"):
        raise UserError(
            f"--resume: the checkpoint in {workdir} was made with other training settings; "
            "rerun with the same settings or without --resume"
        )
    check_world_size(int(state.get("world_size", 1)), dist, workdir)
    network.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    set_rng_states(state["rank_rng"][dist.rank] if dist.enabled else state["rng"])
    log.info("resuming from epoch %d of %d (%s)", state["epochs_done"], settings.epochs, workdir)
    return int(state["epochs_done"]), list(state["history"]), float(state["elapsed_s"])


def check_world_size(saved: int, dist: Distributed, workdir: Path) -> None:
    """A run resumes at the world size it ran at (its shards and RNG states are per rank)."""
    if saved != dist.world_size:
        processes = "1 process" if saved == 1 else f"{saved} processes"
        flag = "without --nproc" if saved == 1 else f"with --nproc {saved} (or torchrun's --nproc-per-node/--nnodes)"
        raise UserError(
            f"--resume: the run in {workdir} ran on {processes}, this one on {dist.world_size}; "
            f"resume it {flag}, or start afresh without --resume"
        )
