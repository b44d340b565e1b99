"""The ``modelyard`` command line: ``main`` is the console-script entry point."""

from backend.cli.app import cli, main

__all__ = ["cli", "main"]
