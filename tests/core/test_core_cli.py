"""The CLI entry: help, version, and no bare tracebacks."""

from __future__ import annotations

import pytest


def test_help_lists_command_groups(cli):
    result = cli("--help")
    assert result.returncode == 0
    for group in ("plugins", "data", "registry"):
        assert group in result.stdout


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("automl-seg ")


def test_unknown_command_is_a_usage_error_without_traceback(cli):
    result = cli("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_ctrl_c_says_what_happened_and_how_to_continue(monkeypatch, capsys):
    from automl_seg.cli import main, plugins_cmd

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plugins_cmd, "load_plugins", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main.run(["plugins", "list"])
    assert exit_info.value.code == 130
    assert " ".join(capsys.readouterr().err.split()) == "interrupted: nothing half-written was registered"


def test_sigterm_unwinds_like_ctrl_c_and_says_so(monkeypatch, capsys):
    """A scheduler's SIGTERM: the same unwinding as Ctrl-C, its own message and exit code (143); the
    process's own SIGTERM handler comes back after the command."""
    import os
    import signal
    import time

    from automl_seg.cli import main, plugins_cmd

    def terminated(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in this thread at the next bytecode, long before this ends
        raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr(plugins_cmd, "load_plugins", terminated)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_info:
        main.run(["plugins", "list"])
    assert exit_info.value.code == 143
    assert " ".join(capsys.readouterr().err.split()) == "terminated (SIGTERM): nothing half-written was registered"
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    ("argv", "hint"),
    [(["-v", "search", "--dataset", "X"], "rerun it with --resume"), (["train", "m:1"], "rerun it with --resume"),
     (["tune", "--trials", "3"], "rerun the same tune command to continue the study")],
)  # fmt: skip
def test_ctrl_c_names_how_each_command_continues(argv: list[str], hint: str):
    from automl_seg.cli.main import interrupted_message

    assert interrupted_message(argv).startswith("interrupted: nothing half-written was registered; ")
    assert hint in interrupted_message(argv)


def test_error_messages_keep_their_brackets(cli, tmp_path):
    # rich would read "[postgres]" as markup and drop it from the install hint
    result = cli("registry", "list", "--registry", tmp_path, env={"AUTOML_SEG_REGISTRY_INDEX": "nosuchdb+driver://x/y"})
    assert result.returncode == 2 and "pip install 'automl-seg[postgres]'" in " ".join(result.stderr.split())


def test_consoles_are_sized_per_invocation_not_at_import(monkeypatch):
    """A process that imported the CLI before setting ``COLUMNS`` (an embedding tool, an in-process test)
    still gets that width; piped output without it keeps the 120-column default."""
    from automl_seg.cli import common, main

    monkeypatch.setattr(main, "app", lambda **_kwargs: None)
    monkeypatch.delenv("COLUMNS", raising=False)
    main.run([])
    assert common.console.width == common.err_console.width == common.PIPED_WIDTH
    monkeypatch.setenv("COLUMNS", "300")
    main.run([])
    assert common.console.width == common.err_console.width == 300
    monkeypatch.delenv("COLUMNS")
    main.run([])  # leave the default width for the tests after this one


_TEARDOWN_PROBE = """
import atexit, sys
import automl_seg.cli.main as m
atexit.register(lambda: print("interpreter teardown ran", flush=True))
m.entry(sys.argv[1:])
"""


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("world_size", "teardown"), [("2", False), ("1", True)])
def test_a_job_process_that_finished_skips_the_interpreter_teardown(world_size: str, teardown: bool) -> None:
    """A process of a multi-process job ends without teardown, where gloo's threads could abort it; its
    output is complete. A lone process ends normally."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "WORLD_SIZE": world_size}
    out = subprocess.run(
        [sys.executable, "-c", _TEARDOWN_PROBE, "plugins", "list"], env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr
    assert "dints" in out.stdout  # the listing was flushed before the process ended
    assert ("interpreter teardown ran" in out.stdout) is teardown
