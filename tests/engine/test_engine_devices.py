"""Device settings: the ``automl-seg`` program flushes subnormal floats on every intra-op thread;
callers of the CLI in their own process keep their floating-point mode."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Calls the CLI (``{call}``) in this fresh interpreter, then multiplies a tensor of subnormal floats
#: large enough for two intra-op threads to share; prints the share of products that stayed subnormal.
_PROBE = """
import torch
import automl_seg.cli.main as m
{patch}
try:
    m.{call}(["plugins", "list"])
except SystemExit as exc:
    assert not exc.code, exc.code
torch.set_num_threads(2)
x = torch.full((1 << 22,), 1e-39)
print((x * 1.0 != 0).float().mean().item())
"""


def _subnormal_share(call: str, patch: str = "") -> float:
    code = _PROBE.format(call=call, patch=patch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(240)
def test_program_flushes_subnormals_on_every_thread() -> None:
    assert _subnormal_share("entry") == 0.0


@pytest.mark.timeout(240)
def test_probe_sees_a_program_that_does_not_flush() -> None:
    """The probe can fail: without the flush, subnormal products stay subnormal."""
    assert _subnormal_share("entry", patch="m.flush_denormals = lambda: None") == 1.0


@pytest.mark.timeout(240)
def test_in_process_callers_keep_their_floating_point_mode() -> None:
    """Tests and notebooks call ``run``: flushing there would change their process (hypothesis refuses to
    draw floats once subnormals are flushed)."""
    assert _subnormal_share("run") == 1.0
