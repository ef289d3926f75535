"""``--nproc N``: the same command again as a DDP job of N processes on this node.

The processes are started and watched by PyTorch's elastic agent (``torch.distributed.launcher``,
what ``torchrun --standalone --nproc-per-node N`` runs): a c10d rendezvous on a free local port,
no restarts, every process told its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. When a process
fails the agent stops the others, and this module turns the failures into one line naming the
rank whose failure ended the job (``JobFailed``); the processes themselves print nothing then,
they leave their message in the error file the agent gives each of them (``report_failure``).
Under a plain ``torchrun`` the processes print themselves: rank 0 every error, the other ranks only
those that are their own (not the user error every rank raises alike).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from automl_seg.errors import ConfigError, Terminated, UserError

if TYPE_CHECKING:
    from torch.distributed.launcher.api import LaunchConfig

#: set in the environment of the processes this module starts: they leave the printing to it
LAUNCHED_ENV = "AUTOML_SEG_LAUNCHED"
NPROC_FLAG = "--nproc"
#: why a rank failed; a failure a rank only suffered ("peer": a collective lost another rank,
#: "interrupted": stopped by a signal it was sent) is not the one that names the job's failure
FailureKind = Literal["user", "internal", "peer", "interrupted"]
_SECONDARY: set[str] = {"peer", "interrupted"}
_TERMINATED = 143  # the exit code of a rank stopped by SIGTERM (automl_seg.cli.main)


class JobFailed(UserError):
    """A DDP job in which a process failed; the message names the rank, ``exit_code`` is its own."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def in_job() -> bool:
    """Whether this process is one of a distributed job's (torchrun set ``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (what every process of the job runs)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == NPROC_FLAG:
            skip = True
        elif not arg.startswith(f"{NPROC_FLAG}="):
            out.append(arg)
    return out


def check_nproc(nproc: int, device: str) -> None:
    """A clear error for a process count this node cannot give one device each."""
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: give the number of processes, 1 or more")
    if in_job() and nproc > 1:
        raise ConfigError("--nproc inside torchrun: torchrun already started the processes; drop --nproc")
    if device == "cuda" or (device == "auto" and _cuda_available()):
        import torch

        if nproc > torch.cuda.device_count():
            raise ConfigError(
                f"--nproc {nproc} needs one GPU per process but {torch.cuda.device_count()} are visible; "
                "lower --nproc or add --device cpu"
            )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def local_launch_config(nproc: int) -> LaunchConfig:
    """The elastic agent's settings for a job of ``nproc`` processes on this node (``torchrun
    --standalone``): a c10d rendezvous on a free local port, a fresh run id, no restarts."""
    from torch.distributed.launcher.api import LaunchConfig

    return LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"automl-seg-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.1,
    )


def launch_local(
    argv: Sequence[str], nproc: int, *, threads_per_process: int | None = None, hint: str | None = None
) -> None:
    """Run ``python -m automl_seg *argv`` as ``nproc`` processes of one DDP job on this node and wait.

    ``threads_per_process`` sets ``OMP_NUM_THREADS`` (default: this process' CPU cores shared out,
    unless it is set already). A failed job raises ``JobFailed`` naming the rank (with ``hint``, how
    to continue, where the failure was not the user's); Ctrl-C or SIGTERM stop every process."""
    import sys

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    config = local_launch_config(nproc)
    threads = threads_per_process or max(1, len(os.sched_getaffinity(0)) // nproc)
    environment = {LAUNCHED_ENV: "1"}
    if "OMP_NUM_THREADS" not in os.environ or threads_per_process:
        environment["OMP_NUM_THREADS"] = str(threads)
    try:
        with _environment(environment), _quiet_agent():
            elastic_launch(config, sys.executable)("-m", "automl_seg", *argv)
    except ChildFailedError as exc:
        message, code = describe_failures(exc.failures)
        raise JobFailed(message if code == 2 or not hint else f"{message}; {hint}", code) from None
    except SignalException as exc:
        raise (Terminated() if exc.sigval.name == "SIGTERM" else KeyboardInterrupt()) from exc


def describe_failures(failures: Mapping[int, Any]) -> tuple[str, int]:
    """One line for the failures of a job (rank -> the agent's ``ProcessFailure``) and the exit code:
    the failure that ended the job first (a crash, a kill, an error of a rank's own) over those it
    caused (other ranks losing their peer), then the earliest, then the lowest rank."""

    def order(item: tuple[int, Any]) -> tuple[bool, int, int]:
        rank, failure = item
        recorded = _recorded(failure)
        # a rank the agent stopped (SIGTERM: it exits at once, leaving no message) only followed
        stopped = not recorded and failure.exitcode in (_TERMINATED, -signal.SIGTERM)
        return (stopped or recorded.get("kind") in _SECONDARY, failure.timestamp, rank)

    rank, failure = min(failures.items(), key=order)
    recorded = _recorded(failure)
    if recorded:
        code = int(recorded.get("exit_code", 1))
        return f"rank {rank}: {recorded['message']}", code if recorded.get("kind") == "user" else max(code, 1)
    ended = f"died (signal {failure.signal_name()})" if failure.exitcode < 0 else f"exited with code {failure.exitcode}"
    # a rank that hung: the others gave up on it (collective timeout) well before the agent killed it
    waited = sorted(
        other for other, f in failures.items()
        if _recorded(f).get("kind") == "peer" and f.timestamp < failure.timestamp - 1
    )  # fmt: skip
    if waited:
        ranks = ", ".join(map(str, waited))
        return f"rank {rank} hung: rank(s) {ranks} gave up waiting for it (collective timeout), then it was stopped", 1
    return f"rank {rank} {ended}; the other ranks were stopped", 1


def _recorded(failure: Any) -> dict[str, Any]:
    """What ``report_failure`` left in the failed process' error file (empty when it left nothing)."""
    data = getattr(failure, "error_file_data", None) or {}
    recorded = data.get("automl_seg") if isinstance(data, dict) else None
    return recorded if isinstance(recorded, dict) else {}


def report_failure(message: str, kind: FailureKind, exit_code: int) -> str | None:
    """Leave this process' failure for the agent (its error file); the line to print, if any.

    Outside a job: ``message``. In a job started by ``launch_local``: none (the launcher prints one
    line for the job). Under a plain torchrun: rank 0 every failure, the other ranks those of their
    own (not the user error or interruption every rank meets alike), prefixed with the rank."""
    if not in_job():
        return message
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if error_file:
        record = {"kind": kind, "message": message, "exit_code": exit_code}
        _write_json(Path(error_file), {"message": message, "timestamp": int(time.time()), "automl_seg": record})
    if os.environ.get(LAUNCHED_ENV):
        return None
    rank = os.environ.get("RANK", "0")
    if rank == "0" or kind not in ("user", "interrupted"):
        return f"rank {rank}: {message}"
    return None


def failure_kind(exc: BaseException) -> FailureKind:
    """How a rank failed: a user error, an interruption, a lost peer (a collective failed or timed
    out: another rank died or hangs) or an internal error."""
    if isinstance(exc, UserError):
        return "user"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    import torch.distributed as dist

    if dist.is_available() and isinstance(exc, dist.DistError):
        return "peer"
    # DDP's reducer and gloo report a lost peer as a plain RuntimeError
    if isinstance(exc, RuntimeError) and any(sign in str(exc) for sign in _LOST_PEER):
        return "peer"
    return "internal"


_LOST_PEER = ("Connection closed by peer", "Connection reset by peer", "Timed out waiting", "timed out", "gloo/")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` inside the block (the agent hands its environment to the processes)."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _quiet_agent() -> Iterator[None]:
    """The agent's own log lines (start-up, the failure table) are not the user's concern: the
    launcher reports the outcome in one line."""
    loggers = [logging.getLogger(name) for name in ("torch.distributed.elastic", "torch.distributed.launcher")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
