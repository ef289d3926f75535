"""``automl-seg compare`` through the CLI: bad input is one ``error:`` line with exit code 2, before any run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.cli_in_process


def _args(data_root: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "compare", "--dataset", "Task99_Synthetic", "--data-root", str(data_root), "--registry",
        str(tmp_path / "registry"), "--workdir", str(tmp_path / "work"), "--device", "cpu", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--strategies", "dints,nope"], "unknown strategy 'nope'; installed: dints, fixed"),
        (["--strategies", "dints,fixed", "--seeds", "0"], "seeds: Input should be greater than 0"),
        (["--strategies", "dints"], "at least two strategies"),
        (["--strategies", "dints,fixed", "--budget", "huge"], "unknown budget 'huge'"),
        (["--strategies", "dints,fixed", "--holdout", "0"], "--holdout 0"),
        (["--strategies", "dints,fixed", "--max-cases", "3"], "leaves 1 training case(s)"),
    ],
)
def test_bad_input_is_one_error_line(cli, compare_data_root: Path, tmp_path: Path, extra: list[str], words: str):
    result = cli(*_args(compare_data_root, tmp_path, *extra))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # data checks may log before it
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == lines[-1:] and words in errors[0] and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "registry" / "records").is_dir() or not any((tmp_path / "registry" / "records").iterdir())
