"""lqcdml: machine-learning methods for lattice QCD and lattice field theory."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lqcdml")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
