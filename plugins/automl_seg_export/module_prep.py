"""What both exporters do before tracing, and the array-or-tensor calling convention of their predictors."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from automl_seg.errors import ConfigError

log = logging.getLogger(__name__)

#: what predictors take and give back (the same kind out as in)
ArrayOrTensor = np.ndarray | torch.Tensor


class HalfPrecision(nn.Module):
    """Runs ``net`` in float16 behind a float32 interface.

    The artefact keeps float32 input and logits so that callers (and the sidecar) need not care
    about the compute precision; the casts are two cheap nodes at the graph's edges."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def exportable_copy(model: nn.Module, fp16: bool) -> nn.Module:
    """A CPU, eval-mode copy of ``model`` (half precision inside when asked); the caller's model is untouched."""
    net = copy.deepcopy(model).cpu().eval()
    return HalfPrecision(net).eval() if fp16 else net


def exception_line(exc: BaseException) -> str:
    """``Type: first line of the message``: tracers raise anything, often with pages of detail."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{type(exc).__name__}: {first}"


@contextmanager
def warnings_to_debug_log() -> Iterator[None]:
    """Tracers warn a lot (deprecations, constant folding); keep that out of the user's terminal."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        log.debug("%s: %s", w.category.__name__, w.message)


@contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of chatty library loggers (torch.export, onnxscript) while a block runs."""
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)


def call_with_array_or_tensor(run: Callable[[np.ndarray], np.ndarray], x: ArrayOrTensor) -> ArrayOrTensor:
    """Call a numpy-in/numpy-out ``run`` with a numpy array or a torch tensor, answering in kind.

    Torch tensors come back on the input's device, so a predictor can be handed straight to
    MONAI's ``sliding_window_inference``."""
    if isinstance(x, torch.Tensor):
        out = run(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(out).to(x.device)
    return run(np.ascontiguousarray(x, dtype=np.float32))


def torch_device(providers: list[str] | None, what: str) -> torch.device:
    """``providers`` for torch artefacts are torch devices ('cpu', 'cuda', 'cuda:1'); default: CUDA if present."""
    if not providers:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    wanted = providers[0]
    try:
        device = torch.device(wanted)
    except RuntimeError as exc:
        raise ConfigError(f"{what} runs on a torch device ('cpu' or 'cuda[:N]'), not '{wanted}'") from exc
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{what} runs on a torch device ('cpu' or 'cuda[:N]'), not '{wanted}'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{wanted}' requested but torch sees no CUDA GPU here; use 'cpu'")
    return device


class ModulePredictor:
    """A torch module (an ``ExportedProgram``'s module, a bundle's network) behind the ``Predictor``
    interface (numpy or torch in, same kind out), run on ``device`` without gradients."""

    def __init__(self, module: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> None:
        self.module = module
        self.device = device
        self.providers: list[str] = [f"torch:{device}"]

    def _run(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(x).to(self.device)).float().cpu().numpy()

    def __call__(self, x: ArrayOrTensor) -> ArrayOrTensor:  # the same kind out as in
        return call_with_array_or_tensor(self._run, x)
