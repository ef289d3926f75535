"""What the product imports at run time is installed by `pip install automl-seg`, not only by the dev extra.

The README's first command installs without extras; a module that only the dev extra brings fails
there, possibly minutes into a run (scipy: MONAI's HD95 at the first validation)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("automl_seg", "plugins", "registry")
OWN = {"automl_seg", "automl_seg_registry"} | {
    f"automl_seg_{plugin}" for plugin in ("fixed", "dints", "export", "mlflow")
}
#: imported by MONAI code paths the product runs, not by our own modules
THROUGH_MONAI = {"scipy": "monai.metrics.HausdorffDistanceMetric (HD95 in every evaluation)"}
#: the conformance kit's pytest contracts run under their users' pytest (not its checks and
#: fixtures: `plugins list --verify` imports those without pytest)
KIT_CONTRACTS = ("spaces", "strategies", "exporters", "observers", "tiny_task")
KIT_ONLY = {"pytest": {f"automl_seg/testing/{name}.py" for name in KIT_CONTRACTS}}
#: module -> (extra installing it, the folder of the optional plugin that alone imports it, lazily: the
#: plugin's entry point loads without it)
EXTRA_ONLY = {"mlflow": ("mlflow", "plugins/automl_seg_mlflow/")}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {canonical(re.split(r"[\s;<>=!~\[]", requirement, maxsplit=1)[0]) for requirement in requirements}


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party modules our sources import (absolute imports), with the files importing each."""
    found: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(path.relative_to(ROOT).as_posix())
    return {m: files for m, files in found.items() if m not in sys.stdlib_module_names and m not in OWN}


def test_every_module_the_product_imports_is_a_runtime_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    runtime = declared()
    missing = {}
    for module, files in imported_modules().items():
        if files <= KIT_ONLY.get(module, set()):
            continue
        if module in EXTRA_ONLY:
            extra, folder = EXTRA_ONLY[module]
            assert all(file.startswith(folder) for file in files), f"{module} imported outside {folder}: {files}"
            assert any(canonical(d) in declared(extra) for d in distributions.get(module, [module])), module
            continue
        if not {canonical(d) for d in distributions.get(module, [module])} & runtime:
            missing[module] = sorted(files)
    assert not missing, f"imported but not in [project].dependencies: {missing}"


def test_the_mlflow_plugin_loads_without_mlflow() -> None:
    """Its entry point module imports MLflow only inside the hooks (``plugins list`` works without the extra)."""
    source = (ROOT / "plugins/automl_seg_mlflow/plugin.py").read_text()
    top = [node for node in ast.parse(source).body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = {(node.module if isinstance(node, ast.ImportFrom) else node.names[0].name) or "" for node in top}
    assert not {name for name in names if name.split(".")[0] in {"mlflow", "automl_seg_mlflow"}}


def test_what_monai_imports_for_us_is_a_runtime_dependency() -> None:
    assert set(THROUGH_MONAI) <= declared(), THROUGH_MONAI
