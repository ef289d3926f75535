"""The conformance kit on the built-in search spaces and exporters, loaded through their entry points."""

from __future__ import annotations

import pytest

from automl_seg.interfaces import Exporter, SearchSpace
from automl_seg.plugins import PluginHost, load_plugins
from automl_seg.testing import ExporterContract, SearchSpaceContract


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return load_plugins(disabled=set())


class TestFixedSpace(SearchSpaceContract):
    @pytest.fixture
    def space(self, host: PluginHost) -> SearchSpace:
        return host.space("fixed")


class TestOnnxExporter(ExporterContract):
    @pytest.fixture
    def exporter(self, host: PluginHost) -> Exporter:
        return host.exporter("onnx")


class TestTorchScriptExporter(ExporterContract):
    @pytest.fixture
    def exporter(self, host: PluginHost) -> Exporter:
        return host.exporter("torchscript")
