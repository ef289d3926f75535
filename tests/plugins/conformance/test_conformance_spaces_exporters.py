"""The conformance kit on the built-in search spaces and exporters, loaded through their entry points."""

from __future__ import annotations

from typing import Any

import pytest

from automl_seg.interfaces import Exporter, SearchSpace
from automl_seg.plugins import PluginHost, load_plugins
from automl_seg.testing import ExporterContract, SearchSpaceContract, checks


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(disabled=set())


class TestFixedSpace(SearchSpaceContract):
    @pytest.fixture
    def space(self, host: PluginHost) -> SearchSpace:
        return host.space("fixed")


class TestDintsSpace(SearchSpaceContract):
    @pytest.fixture
    def space(self, host: PluginHost) -> SearchSpace:
        return host.space("dints")

    @pytest.fixture
    def space_args(self, space: SearchSpace, plan, budget) -> dict[str, Any]:
        return {**space.default_args(plan, budget), "num_blocks": 2}

    @pytest.fixture
    def arch(self, space: SearchSpace, space_args: dict[str, Any]) -> dict[str, Any]:
        return checks.sample_arch(space, space_args, seed=0)  # the dints space must offer sample_arch


class TestDintsSpaceFullPreset(TestDintsSpace):
    """Settings are fixtures: the full preset's depth 4 needs patch sides divisible by 32."""

    @pytest.fixture
    def patch_size(self) -> tuple[int, int, int]:
        return (32, 32, 32)

    @pytest.fixture
    def budget(self) -> str:
        return "full"

    def test_the_settings_reach_the_space_args(self, space_args: dict[str, Any]):
        assert space_args["num_depths"] == 4  # 16^3 or the quick preset would give 3


class TestOnnxExporter(ExporterContract):
    @pytest.fixture
    def exporter(self, host: PluginHost) -> Exporter:
        return host.exporter("onnx")


class TestTorchScriptExporter(ExporterContract):
    @pytest.fixture
    def exporter(self, host: PluginHost) -> Exporter:
        return host.exporter("torchscript")


class TestTorchExportExporter(ExporterContract):
    @pytest.fixture
    def exporter(self, host: PluginHost) -> Exporter:
        return host.exporter("torch-export")


class TestMonaiBundleExporter(ExporterContract):
    @pytest.fixture
    def exporter(self, host: PluginHost) -> Exporter:
        return host.exporter("monai-bundle")
