"""The CLI entry: help, version, and no bare tracebacks."""

from __future__ import annotations


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
