"""onnxruntime execution providers: which to ask for, and which a session really uses.

onnxruntime-gpu lists TensorRT and CUDA among ``get_available_providers()`` even on machines
without a GPU or the CUDA libraries; creating a session then silently falls back to CPU (with a
log line). The only truth is ``session.get_providers()`` after the session exists, so everything
here reports that.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from automl_seg.errors import ConfigError

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
#: Preferred order when the user forces nothing: fastest first, CPU always last.
PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", CPU)
GPU_PROVIDERS = frozenset(PREFERENCE) - {CPU}
_ORT_DEFAULT_LOG_SEVERITY = 2  # onnxruntime's documented default (warning)


def requested_providers(forced: Sequence[str] | None = None) -> list[str]:
    """The providers to ask a session for: ``forced`` as given (validated), else the preferred order."""
    available = ort.get_available_providers()
    if forced:
        unknown = [p for p in forced if p not in available]
        if unknown:
            raise ConfigError(
                f"onnxruntime provider(s) {', '.join(unknown)} not available; installed: {', '.join(available)}"
            )
        return list(forced)
    return [p for p in PREFERENCE if p in available] or available


@contextlib.contextmanager
def _quiet_provider_fallback() -> Iterator[None]:
    """Hide onnxruntime's noise about GPU providers that fail to load (we report it ourselves): its logger is
    silenced, and what it prints to stdout goes to the debug log."""
    captured = io.StringIO()
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_LOG_SEVERITY)
        if captured.getvalue().strip():
            log.debug("onnxruntime: %s", captured.getvalue().strip())


def session_options() -> ort.SessionOptions:
    """The options of every session here (``bench_onnx`` adds profiling to them)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # the sliding window runs torch code (padding, blending) between session runs: onnxruntime's
    # threads spinning for more work would take the CPU from it (slow tail latencies in bench_onnx)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def create_session(model: Path | bytes, forced: Sequence[str] | None = None) -> ort.InferenceSession:
    """A session on the best provider that really works; logs when onnxruntime fell back.

    With ``forced`` providers, a session that ends up using none of them is an error: the user
    asked for that hardware and would otherwise get CPU speed without noticing."""
    asked = requested_providers(forced)
    with _quiet_provider_fallback():
        session = ort.InferenceSession(
            model if isinstance(model, bytes) else str(model), session_options(), providers=asked
        )
    used = session.get_providers()
    dropped = [p for p in asked if p not in used]
    if dropped:
        log.info("onnxruntime could not use %s here; running on %s", ", ".join(dropped), ", ".join(used))
    if forced and not set(used) & set(forced):
        raise ConfigError(
            f"none of the forced onnxruntime providers ({', '.join(forced)}) works on this machine "
            f"(the session fell back to {', '.join(used)}); install their GPU libraries or force {CPU}"
        )
    return session


def _probe_model() -> bytes:
    """A one-node float16 model: enough to see which providers load, in any precision."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def usable_providers(forced: Sequence[str] | None = None) -> list[str]:
    """The providers a session really gets on this machine (probed with a tiny model)."""
    return create_session(_probe_model(), forced).get_providers()
