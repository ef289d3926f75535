"""automl-seg: plugin-based AutoML for 3D medical image segmentation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("automl-seg")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

#: Version of the plugin API (hookspecs + interfaces). Plugins declare the major version they
#: were written for as ``AUTOML_SEG_API = 1`` in their plugin module.
API_VERSION = 1

__all__ = ["API_VERSION", "__version__"]
