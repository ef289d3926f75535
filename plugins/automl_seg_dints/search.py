"""The bi-level DiNTS search: weights on one half of the training cases, architecture on the other.

Epochs before ``warmup_epochs`` train the weights only. Afterwards every weight step (SGD, half A)
is followed by an architecture step (Adam, half B) whose loss is the segmentation loss plus the
ramped regularisers (entropies, memory budget, topology), the ramp rising linearly to 1 at the last
epoch. The state is checkpointed atomically after every epoch; a resumed run continues from it and,
on CPU with the same seed, ends at the same architecture as an uninterrupted run.

In a DDP job (``SearchContext.dist``) both halves are sharded over the ranks every epoch. The
weights train wrapped in DistributedDataParallel, which leaves the architecture parameters alone;
their gradients are averaged over the ranks before each architecture step, so they stay identical
on every rank. Rank 0 measures the memory calibration, decodes the final architecture, writes the
checkpoint (with every rank's RNG states) and the artefacts, and broadcasts what the others need.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.networks.nets import DiNTS
from rich.progress import Progress

from automl_seg.api import (
    Distributed,
    atomic_torch_save,
    check_world_size,
    grad_scaler,
    lr_factor,
    mixed_precision,
    progress_bar,
    read_checkpoint,
    rng_states,
    seed_everything,
    set_rng_states,
)
from automl_seg.errors import ConfigError, PluginError
from automl_seg.interfaces import MemoryFigures, SearchContext, SearchOutcome, SupernetSpace
from automl_seg_dints.args import check_patch, parse_space_args
from automl_seg_dints.calibrate import MemoryCalibration, calibrate
from automl_seg_dints.losses import arch_loss_terms
from automl_seg_dints.measure import measure_training_memory_mb
from automl_seg_dints.plots import plot_search_curves, plot_topology
from automl_seg_dints.settings import DintsSettings
from automl_seg_dints.supernet import FastTopologySearch, MemoryEstimator
from automl_seg_dints.topology import DecodedArch, decode, decode_within_budget

log = logging.getLogger(__name__)

CHECKPOINT = "dints_search.pt"
CALIBRATION = "memory_calibration.json"
#: the budget is a soft loss term: a decode above it by less than this share of the supernet (or, for small
#: budgets, by less than half the budget) is DiNTS working as intended, not worth a warning
OVER_BUDGET_SLACK = 0.05
_MOMENTUM, _WEIGHT_DECAY = 0.9, 4e-5


def split_halves(cases: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """Training cases halved at random (seeded): weights learn on A, the architecture on B."""
    if len(cases) < 2:
        raise ConfigError(f"the dints search needs at least 2 training cases (got {len(cases)}); use more cases")
    order = np.random.default_rng(seed).permutation(sorted(cases))
    half = len(order) // 2
    return [str(c) for c in order[:half]], [str(c) for c in order[half:]]


def ramp(epoch: int, settings: DintsSettings) -> float:
    """Weight of the regularisers: 0 during warm-up, then rising linearly to 1 at the last epoch."""
    if epoch < settings.warmup_epochs:
        return 0.0
    return (epoch - settings.warmup_epochs + 1) / (settings.epochs - settings.warmup_epochs)


@dataclass
class _State:
    model: DiNTS
    weight_opt: torch.optim.Optimizer
    arch_opt: torch.optim.Optimizer
    #: one gradient scaler per optimizer (active for float16 only): each step's overflow skips only that step
    weight_scaler: torch.amp.GradScaler
    arch_scaler: torch.amp.GradScaler
    history: list[dict[str, Any]]
    next_epoch: int = 0


def _save_checkpoint(path: Path, state: _State, fingerprint: dict[str, Any], dist: Distributed) -> None:
    """Rank 0 writes the checkpoint, with every rank's RNG states (gathered: a collective)."""
    states = dist.gather(rng_states())
    if not dist.is_main:
        return
    atomic_torch_save(
        {
            "fingerprint": fingerprint,
            "next_epoch": state.next_epoch,
            "model": state.model.state_dict(),
            "weight_opt": state.weight_opt.state_dict(),
            "arch_opt": state.arch_opt.state_dict(),
            "weight_scaler": state.weight_scaler.state_dict(),
            "arch_scaler": state.arch_scaler.state_dict(),
            "history": state.history,
            "rng": states[0],
            **({"world_size": dist.world_size, "rank_rng": states} if dist.enabled else {}),
        },
        path,
    )


def _load_checkpoint(path: Path, state: _State, fingerprint: dict[str, Any], dist: Distributed) -> None:
    saved = read_checkpoint(path)
    if saved["fingerprint"] != fingerprint:
        raise ConfigError(
            f"checkpoint {path} belongs to a search with other settings, space or seed; "
            "rerun without --resume or with the original settings"
        )
    check_world_size(int(saved.get("world_size", 1)), dist, path.parent)
    state.model.load_state_dict(saved["model"])
    state.weight_opt.load_state_dict(saved["weight_opt"])
    state.arch_opt.load_state_dict(saved["arch_opt"])
    state.weight_scaler.load_state_dict(saved["weight_scaler"])
    state.arch_scaler.load_state_dict(saved["arch_scaler"])
    state.history = saved["history"]
    state.next_epoch = saved["next_epoch"]
    set_rng_states(saved["rank_rng"][dist.rank] if dist.enabled else saved["rng"])


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.as_tensor() if hasattr(tensor, "as_tensor") else tensor


def _batches(loader: Any, limit: int | None) -> Iterator[dict[str, torch.Tensor]]:
    return islice(iter(loader), limit) if limit else iter(loader)


def _loader_length(loader: Any, limit: int | None) -> int | None:
    try:
        length = len(loader)
    except TypeError:
        return limit
    return min(length, limit) if limit else length


class DintsSearch:
    """One search run; ``run()`` returns the outcome the engine registers."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self.settings: DintsSettings = ctx.settings  # type: ignore[assignment]
        self.args = parse_space_args(ctx.space_args)
        plan = ctx.data.plan
        self.patch = tuple(int(s) for s in plan.patch_size)
        check_patch(self.args, self.patch)
        self.batch_size = self.settings.batch_size or int(plan.batch_size)
        # a train batch holds samples_per_image random patches of each of its volumes
        self.patches_per_batch = self.batch_size * int(getattr(plan, "samples_per_image", 1))
        self.device = torch.device(ctx.device)
        self.dist: Distributed = ctx.dist
        seed_everything(ctx.seed)
        space = ctx.space
        if not isinstance(space, SupernetSpace):
            raise PluginError(f"the dints strategy searches a supernet, which space '{space.name}' does not build")
        model = space.build_supernet(self.args.model_dump()).to(self.device)
        if not isinstance(model, DiNTS) or not isinstance(model.dints_space, FastTopologySearch):
            raise PluginError(f"space '{space.name}' built a supernet that is not a DiNTS around FastTopologySearch")
        self.model = model
        self.space = model.dints_space
        arch_names = {id(p): name for name, p in self.model.named_parameters()}
        # the weights' gradients are averaged by DDP; the architecture's by _arch_step (DDP's reducer
        # would expect them in every backward, but the weight steps leave them frozen)
        self.trained_model = self.dist.wrap(
            self.model, ignore=[arch_names[id(p)] for p in self.space.arch_parameters()]
        )
        self.estimator = MemoryEstimator(self.space, self.patches_per_batch, self.patch)
        self.reference_full_mb = self.estimator.reference_full_mb()
        # measured on rank 0 only: every rank must read the budget alike
        self.calibration = self.dist.broadcast(self._memory_calibration() if self.dist.is_main else None)
        self.budget_fraction = self.settings.budget.resolve(
            self.reference_full_mb, self.estimator.minimum_fraction(), self.calibration
        )
        log.info(
            "dints: memory budget %s = %.3f of the full supernet (%.3gMB estimated at batch %d, patch %s)",
            self.settings.budget.describe(), self.budget_fraction, self.reference_full_mb, self.patches_per_batch,
            "x".join(map(str, self.patch)),
        )  # fmt: skip
        self.half_a, self.half_b = split_halves(list(ctx.data.train_cases), ctx.seed)
        self.loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
        arch_ids = {id(p) for p in self.space.arch_parameters()}
        self.weights = [p for p in self.model.parameters() if id(p) not in arch_ids]
        self.checkpoint = Path(ctx.workdir) / CHECKPOINT

    def _memory_calibration(self) -> MemoryCalibration | None:
        """For a megabyte budget, the measured calibration of the cost model (``automl_seg_dints.calibrate``),
        kept in the workdir so that a resumed search reads the budget as the original run did."""
        budget = self.settings.budget
        if budget.megabytes is None:
            return None
        if not self.settings.measure_memory:
            log.warning(
                "dints: measure_memory is off, so the %s budget is read on the cost model's scale, not as training "
                "memory",
                budget.describe(),
            )
            return None
        path = Path(self.ctx.workdir) / CALIBRATION
        if self.ctx.resume and path.is_file():
            try:
                return MemoryCalibration.model_validate_json(path.read_text())
            except (OSError, ValueError):
                log.warning("dints: %s is unreadable; measuring the calibration again", path)
        calibration = calibrate(self.args, self.estimator, self.patches_per_batch, self.patch, self.device)
        if not calibration.usable:
            log.warning(
                "dints: training memory did not grow from the sparsest to the densest architecture (%.4g -> %.4gMB "
                "measured), so the %s budget is read on the cost model's scale",
                *calibration.measured_mb,
                budget.describe(),
            )
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(calibration.model_dump_json(indent=1))
        return calibration

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "settings": self.settings.model_dump(),
            "space": self.args.model_dump(),
            "seed": self.ctx.seed,
            "patch": list(self.patch),
            "batch_size": self.batch_size,
        }

    def _loader(self, cases: list[str], epoch: int, salt: int) -> Any:
        # a seed per epoch and half: a resumed run draws the same batches as an uninterrupted one;
        # in DDP the half is dealt to the ranks by that seed, and each rank augments with its own
        seed = self.ctx.seed * 10_007 + epoch * 2 + salt
        shard = self.dist.shard(cases, seed=seed)
        return self.ctx.data.train_loader(
            shard, batch_size=self.batch_size, shuffle=True, seed=self.dist.rank_seed(seed)
        )

    def _to(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain tensors on the device (MONAI's MetaTensor wraps every op in Python-level dispatch), the
        image in the weights' dtype."""
        image, label = (_plain(batch[key]) for key in ("image", "label"))
        return image.to(self.device, self.weights[0].dtype), label.to(self.device)

    def _set_trainable(self, weights: bool) -> None:
        for p in self.weights:
            p.requires_grad_(weights)
        for p in self.space.arch_parameters():
            p.requires_grad_(not weights)

    def _segmentation_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The forward pass in the device's training precision; the loss in float32."""
        image, label = self._to(batch)
        with mixed_precision(self.device, self.settings.amp):
            logits = model(image)
        return self.loss_fn(logits.float(), label)

    @staticmethod
    def _descend(
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        before_step: Callable[[], None] = lambda: None,
    ) -> None:
        scaler.scale(loss).backward()
        before_step()
        scaler.step(optimizer)
        scaler.update()

    def _weight_step(self, state: _State, batch: dict[str, torch.Tensor]) -> float:
        self._set_trainable(weights=True)
        state.weight_opt.zero_grad(set_to_none=True)
        loss = self._segmentation_loss(self.trained_model, batch)  # DDP averages the weights' gradients
        self._descend(loss, state.weight_opt, state.weight_scaler)
        return float(loss.detach())

    def _arch_step(self, state: _State, batch: dict[str, torch.Tensor], weight: float) -> dict[str, float]:
        self._set_trainable(weights=False)
        state.arch_opt.zero_grad(set_to_none=True)
        seg = self._segmentation_loss(state.model, batch)
        terms = arch_loss_terms(self.space, self.estimator, self.budget_fraction)
        loss = seg + terms.combined(weight, self.settings.topology_loss_weight)
        arch = self.space.arch_parameters()
        self._descend(loss, state.arch_opt, state.arch_scaler, lambda: self.dist.average_gradients(arch))
        return {"arch_loss": float(loss.detach()), "arch_seg_loss": float(seg.detach()), **terms.as_floats()}

    def _run_epoch(self, state: _State, epoch: int, progress: Progress) -> dict[str, Any]:
        settings = self.settings
        lr = settings.weight_lr * lr_factor("poly", epoch / settings.epochs)
        for group in state.weight_opt.param_groups:
            group["lr"] = lr
        searching = epoch >= settings.warmup_epochs
        weight = ramp(epoch, settings)
        loader_a = self._loader(self.half_a, epoch, 0)
        batches_b = _batches(self._loader(self.half_b, epoch, 1), None) if searching else None
        total = _loader_length(loader_a, settings.max_steps_per_epoch)
        phase = "search" if searching else "warm-up"
        task = progress.add_task(f"{phase} epoch {epoch + 1}/{settings.epochs}", total=total)
        started = time.perf_counter()
        self.model.train()
        weight_losses: list[float] = []
        arch_records: list[dict[str, float]] = []
        for batch in _batches(loader_a, settings.max_steps_per_epoch):
            weight_losses.append(self._weight_step(state, batch))
            if batches_b is not None:
                batch_b = next(batches_b, None)
                if batch_b is None:  # half B ran out first: start it again with the next seed
                    batches_b = _batches(self._loader(self.half_b, epoch, 1 + 2 * len(arch_records)), None)
                    batch_b = next(batches_b)
                arch_records.append(self._arch_step(state, batch_b, weight))
            progress.advance(task)
        progress.remove_task(task)
        return self._epoch_record(epoch, phase, weight, lr, weight_losses, arch_records, time.perf_counter() - started)

    def _decode(self) -> DecodedArch:
        """The discrete architecture the search stands at, by the ``decode`` setting."""
        space, settings = self.space, self.settings
        if settings.decode == "probability":
            return decode(space.topology, space.raw_path_probs(), space.log_alpha_c)
        fractions = self.estimator.path_fractions(space.log_alpha_c.detach().cpu().argmax(-1).numpy())
        return decode_within_budget(
            space.topology, space.raw_path_probs(), space.log_alpha_c, fractions,
            self.budget_fraction, settings.budget_tolerance,
        )  # fmt: skip

    def _epoch_record(
        self,
        epoch: int,
        phase: str,
        weight: float,
        lr: float,
        weight_losses: list[float],
        arch_records: list[dict[str, float]],
        seconds: float,
    ) -> dict[str, Any]:
        with torch.no_grad():
            terms = arch_loss_terms(self.space, self.estimator, self.budget_fraction)
            decoded = self._decode()
        record: dict[str, Any] = {
            "epoch": epoch,
            "phase": phase,
            "ramp": weight,
            "weight_lr": lr,
            "seconds": seconds,
            **terms.as_floats(),
            "memory_decoded": self.estimator.discrete_fraction(decoded.arch_code_a, decoded.arch_code_c),
            "path_probs": self.space.path_probs().detach().cpu().tolist(),
            "op_probs": self.space.op_probs().detach().cpu().tolist(),
        }
        means = {"train_loss": float(np.mean(weight_losses))} if weight_losses else {}
        if arch_records:
            means.update(
                {key: float(np.mean([r[key] for r in arch_records])) for key in ("arch_loss", "arch_seg_loss")}
            )
        means = self.dist.mean(means)  # the epoch's losses over every rank's batches
        for key in ("train_loss", "arch_loss", "arch_seg_loss"):
            record[key] = means.get(key)
        return record

    def new_state(self) -> _State:
        """The search's starting state: the supernet with fresh optimizers and scalers."""
        settings = self.settings
        return _State(
            model=self.model,
            weight_opt=torch.optim.SGD(
                self.weights, lr=settings.weight_lr, momentum=_MOMENTUM, weight_decay=_WEIGHT_DECAY
            ),
            arch_opt=torch.optim.Adam(self.space.arch_parameters(), lr=settings.arch_lr, betas=(0.5, 0.999)),
            weight_scaler=grad_scaler(self.device, settings.amp),
            arch_scaler=grad_scaler(self.device, settings.amp),
            history=[],
        )

    def run(self) -> SearchOutcome:
        ctx = self.ctx
        settings, state = self.settings, self.new_state()
        Path(ctx.workdir).mkdir(parents=True, exist_ok=True)
        if ctx.resume and self.dist.broadcast(self.checkpoint.is_file()):
            _load_checkpoint(self.checkpoint, state, self._fingerprint(), self.dist)
            log.info("dints: resuming the search at epoch %d from %s", state.next_epoch + 1, self.checkpoint)
        started = time.perf_counter()
        with progress_bar(ctx.progress and self.dist.is_main) as progress:
            for epoch in range(state.next_epoch, settings.epochs):
                record = self._run_epoch(state, epoch, progress)
                _log_epoch(record, settings.epochs)
                state.history.append(record)
                state.next_epoch = epoch + 1
                _save_checkpoint(self.checkpoint, state, self._fingerprint(), self.dist)
                ctx.epoch_ended(
                    epoch,
                    {k: float(v) for k, v in record.items() if isinstance(v, int | float) and not isinstance(v, bool)},
                )
        return self._outcome(state, time.perf_counter() - started)

    def _outcome(self, state: _State, seconds: float) -> SearchOutcome:
        """The decoded architecture with its metrics and artefacts; in DDP rank 0 decodes, measures and
        writes, and the other ranks get the architecture alone (the engine registers rank 0's outcome)."""
        if not self.dist.is_main:
            received: dict[str, Any] | None = self.dist.broadcast(None)  # rank 0's architecture
            if received is None:
                raise RuntimeError("rank 0 sent no architecture")
            return SearchOutcome(arch=received, space_args=self.args.model_dump(), history=state.history)
        workdir = Path(self.ctx.workdir)
        decoded = self._decode()
        arch = self.dist.broadcast(decoded.to_payload())
        requested = self.budget_fraction
        estimated_mb = self.estimator.discrete_mb(decoded.arch_code_a, decoded.arch_code_c)
        memory = MemoryFigures(
            requested=requested,
            requested_mb=requested * self.reference_full_mb,
            estimated=self.estimator.discrete_fraction(decoded.arch_code_a, decoded.arch_code_c),
            estimated_mb=estimated_mb,
            full_estimated_mb=self.reference_full_mb,
        )
        metrics = {"search_loop_s": seconds, "active_paths": float(decoded.arch_code_a.sum())}
        if self.calibration is not None:
            memory.budget_mb = float(self.settings.budget.megabytes or 0.0)
            memory.predicted_mb = self.calibration.measured_for(estimated_mb)
        _warn_over_budget(memory, self.settings.decode)
        if self.settings.measure_memory:
            memory.measured_mb = measure_training_memory_mb(
                self.args.model_dump(), arch, self.patches_per_batch, self.patch, self.device
            )
        _log_memory(memory)
        last = state.history[-1]
        for key in ("train_loss", "arch_loss", "arch_seg_loss"):
            if last.get(key) is not None:
                metrics[f"final_{key}"] = float(last[key])
        history_path = workdir / "search_history.json"
        summary = {"arch": arch, "metrics": metrics, "memory": memory.figures(), "history": state.history}
        history_path.write_text(json.dumps(summary, indent=1))
        artifacts = {
            "topology_png": plot_topology(decoded, workdir / "topology.png"),
            "search_curves_png": plot_search_curves(state.history, self.budget_fraction, workdir / "search_curves.png"),
            "search_history": history_path,
        }
        if self.calibration is not None:
            artifacts["memory_calibration"] = workdir / CALIBRATION
        return SearchOutcome(
            arch=arch, space_args=self.args.model_dump(), history=state.history, metrics=metrics,
            artifacts=artifacts, memory=memory,
        )  # fmt: skip


def _warn_over_budget(memory: MemoryFigures, decode: str) -> None:
    """The budget is a loss term, so DiNTS' own decode may exceed it: say so, and what enforces it."""
    requested, estimated = float(memory.requested or 0.0), float(memory.estimated or 0.0)
    if estimated <= requested + min(OVER_BUDGET_SLACK, requested / 2):
        return
    advice = (
        "the decode keeps each path more likely on than off; set `decode: budget` in the config's strategy section "
        "to decode within the budget"
        if decode == "probability"
        else "no connected architecture with the searched operations fits under it"
    )
    if memory.budget_mb is not None:  # calibrated megabytes: say it in training memory
        sizes = f"{memory.predicted_mb:.4g}MB of training memory", f"{memory.budget_mb:.4g}MB"
    else:
        sizes = f"{memory.estimated_mb:.3g}MB", f"{memory.requested_mb:.3g}MB"
    log.warning(
        "dints: the decoded architecture's estimated memory (%.3f of the supernet, %s) is above the budget "
        "(%.3f, %s): %s",
        estimated, sizes[0], requested, sizes[1], advice,
    )  # fmt: skip


def _log_memory(memory: MemoryFigures) -> None:
    """The decoded architecture's memory on every scale the search has, in one line."""
    parts = [f"{memory.estimated:.3f} of the supernet ({memory.estimated_mb:.3g}MB estimated)"]
    if memory.predicted_mb is not None:
        parts.append(f"{memory.predicted_mb:.4g}MB of training memory predicted")
    if memory.measured_mb is not None:
        parts.append(f"{memory.measured_mb:.4g}MB measured")
    budget = f"{memory.budget_mb:.4g}MB" if memory.budget_mb is not None else f"{memory.requested:.3g}"
    log.info("dints: decoded architecture: %s; budget %s", ", ".join(parts), budget)


def _log_epoch(record: Mapping[str, Any], epochs: int) -> None:
    """One line per search epoch, for logs where the progress bar (removed after each epoch) does not show."""
    losses = [f"{name} {record[key]:.4f}" for name, key in (("weight loss", "train_loss"), ("arch loss", "arch_loss"))
              if record[key] is not None]  # fmt: skip
    log.info(
        "dints %s epoch %d/%d: %s, decoded memory %.3f of the supernet, %.1fs",
        record["phase"], record["epoch"] + 1, epochs, ", ".join(losses), record["memory_decoded"], record["seconds"],
    )  # fmt: skip
