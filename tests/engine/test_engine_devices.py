"""Device settings: subnormal floats are flushed on every intra-op thread of a CLI process."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Runs a CLI command in this fresh interpreter, then multiplies a tensor of subnormal floats large
#: enough for two intra-op threads to share; prints the share of results that stayed subnormal.
_PROBE = """
import torch
from typer.testing import CliRunner
from automl_seg.cli.main import app
{before}
assert CliRunner().invoke(app, ["plugins", "list"]).exit_code == 0
torch.set_num_threads(2)
x = torch.full((1 << 22,), 1e-39)
print((x * 1.0 != 0).float().mean().item())
"""


def _subnormal_share(before: str = "") -> float:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(before=before)], capture_output=True, text=True, check=True, timeout=120
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(240)
def test_cli_flushes_subnormals_on_every_thread() -> None:
    assert _subnormal_share() == 0.0


@pytest.mark.timeout(240)
def test_probe_sees_a_cli_that_does_not_flush() -> None:
    """The probe can fail: without the flush, subnormal products stay subnormal."""
    assert _subnormal_share("import automl_seg.cli.main as m; m.flush_denormals = lambda: None") == 1.0
