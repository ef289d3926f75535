"""automl-seg: plugin-based AutoML for 3D medical image segmentation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("automl-seg")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

#: Version of the plugin API (hookspecs, interfaces, ``automl_seg.api``). Plugins declare the major
#: version they were written for as ``AUTOML_SEG_API = 2`` in their plugin module.
API_VERSION = 2
#: Older versions still loaded. API 1 plugins: ``on_search_ended`` is still called (after
#: ``on_run_ended``), and ``memory_*`` keys of ``SearchOutcome.metrics`` move to ``SearchOutcome.memory``.
SUPPORTED_API_VERSIONS = (1, 2)

__all__ = ["API_VERSION", "SUPPORTED_API_VERSIONS", "__version__"]
