"""A plugin that dies on import or registration, with SystemExit or any other BaseException, is
reported by name and the other plugins and commands keep working; only Ctrl-C still stops everything."""

from __future__ import annotations

import json

import pytest

from automl_seg.plugins import load_plugins

pytestmark = [pytest.mark.cli_in_process, pytest.mark.timeout(120)]

BROKEN = {
    "exits_on_import": "import sys\nsys.exit('no GPU here')\n",
    "odd_base_exception": "class Odd(BaseException):\n    pass\n\nraise Odd('not an Exception')\n",
    "exits_on_register": (
        "from automl_seg.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_search_strategies(register):\n    raise SystemExit(3)\n"
    ),
}


@pytest.fixture
def broken_site(fake_dist, monkeypatch: pytest.MonkeyPatch):
    for name, source in BROKEN.items():
        site = fake_dist(name, source)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_broken_plugins_are_reported_by_name_and_the_rest_load(broken_site) -> None:
    host = load_plugins()
    errors = {name: host.plugins[name].errors for name in BROKEN}
    assert "SystemExit: no GPU here" in errors["exits_on_import"][0]
    assert "Odd: not an Exception" in errors["odd_base_exception"][0]
    assert "SystemExit: 3" in errors["exits_on_register"][0]
    assert host.plugins["fixed"].ok and host.strategy("fixed").name == "fixed"


def test_the_cli_keeps_working_with_broken_plugins(broken_site, cli) -> None:
    listed = cli("plugins", "list", "--json")
    assert listed.returncode == 1  # broken plugins make the listing fail, with their rows
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert all(not rows[name]["ok"] for name in BROKEN) and rows["fixed"]["ok"]
    assert "plugin 'exits_on_import'" in listed.stderr
    assert cli("registry", "list").returncode == 0


def test_ctrl_c_during_a_plugin_import_still_stops(fake_dist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(fake_dist("interrupted", "raise KeyboardInterrupt\n")))
    with pytest.raises(KeyboardInterrupt):
        load_plugins()
