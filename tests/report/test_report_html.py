"""``automl-seg report``: a self-contained HTML page, rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.cli_in_process

DATASET = "Task99_Synthetic"
SECTIONS = ("summary", "settings", "dataset", "figures", "memory", "cases", "overlays")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """(registry, data root, architecture ref, trained ref): the fixed network, one short training on
    six 16^3 cases, three of them validated."""
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.data.synthetic import make_synthetic_msd
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings, train_settings
    from automl_seg.plugins import load_plugins

    root = tmp_path_factory.mktemp("report")
    make_synthetic_msd(root / "data", shape=(16, 16, 16), num_cases=6)
    data = DataSettings(dataset=DATASET, data_root=root / "data", patch_size=(16, 16, 16), val_fraction=0.5)
    train = train_settings("quick", overrides={"epochs": 2, "iterations": 2, "val_every": 1, "lr": 3e-3})
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=root / "work", progress=False)
    with Registry.open(root / "registry") as registry:
        result = run_search(run, data, train, {}, registry=registry, host=load_plugins())
    assert result.trained is not None
    return root / "registry", root / "data", result.architecture.ref, result.trained.record.ref


def render(html: Path, folder: Path) -> tuple[np.ndarray, str, str]:
    """Chromium's screenshot (RGB array), DOM and log of ``html``: headless, offline, a fresh profile."""
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
        f"--user-data-dir={folder / 'profile'}", "--window-size=1200,2400",
    ]  # fmt: skip
    shot = folder / "screenshot.png"
    logged = subprocess.run(
        [*flags, f"--screenshot={shot}", html.as_uri()], capture_output=True, text=True, timeout=120
    )
    dom = subprocess.run([*flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    import matplotlib.image

    return matplotlib.image.imread(shot)[..., :3], dom.stdout, logged.stderr + dom.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_renders_in_chromium_with_every_section(cli, trained, tmp_path) -> None:
    registry, data_root, _, ref = trained
    out = tmp_path / "report.html"
    proc = cli("report", ref, "-o", out, "--registry", registry, "--data-root", data_root)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from a network
    assert html.count("data:image/png;base64,") == 1 + 3  # training curves (the fixed space draws no topology), 3 cases
    for role in ("best", "median", "worst"):
        assert f"<h3>{role}: " in html
    pixels, dom, log = render(out, tmp_path)
    assert pixels.std() > 0.05, "blank screenshot"
    assert all(f'<section id="{name}">' in dom for name in SECTIONS)
    assert "Per-case Dice and HD95" in dom and ref in dom
    assert not [line for line in log.splitlines() if "CONSOLE" in line or "ERR_" in line], log


def test_architecture_only_report_says_what_it_lacks(cli, trained, tmp_path) -> None:
    registry, data_root, architecture, _ = trained
    out = tmp_path / "arch.html"
    proc = cli("report", architecture, "-o", out, "--registry", registry, "--data-root", data_root)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert all(f'<section id="{name}">' in html for name in SECTIONS)
    assert "not trained: no training curves" in html and "not evaluated: no per-case scores" in html
    assert "not evaluated: no validation cases to show" in html


def test_existing_output_needs_overwrite(cli, trained, tmp_path) -> None:
    registry, _, architecture, _ = trained
    out = tmp_path / "report.html"
    out.write_text("keep me")
    proc = cli("report", architecture, "-o", out, "--registry", registry)
    assert proc.returncode == 2 and "already exists; pass --overwrite" in proc.stderr
    assert out.read_text() == "keep me"
    assert cli("report", architecture, "-o", out, "--registry", registry, "--overwrite").returncode == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(("count", "roles"), [(1, ["best"]), (2, ["best", "worst"]), (5, ["best", "median", "worst"])])
def test_best_median_and_worst_are_distinct_cases(count, roles) -> None:
    from automl_seg.report.overlays import ranked_cases

    cases = [{"case": f"c{i}", "dice": {"a": i / 10, "b": i / 10}} for i in range(count)]
    ranked = ranked_cases({"cases": cases})
    assert [role for role, _, _ in ranked] == roles
    assert ranked[0][1] == f"c{count - 1}" and ranked[-1][1] == "c0"
    assert len({case for _, case, _ in ranked}) == len(roles)
