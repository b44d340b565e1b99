"""The backend's version: one source, the installed package's metadata (pyproject.toml's version)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "modelyard"


def backend_version() -> str:
    """The installed modelyard version; ``0+unknown`` when run from a tree that was never installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"


VERSION = backend_version()
