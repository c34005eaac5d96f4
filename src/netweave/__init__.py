"""netweave: an O-RAN O2-IMS gateway."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("netweave")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
