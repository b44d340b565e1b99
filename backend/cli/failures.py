"""How the CLI fails: one exception carrying the exit code, and the codes a script can rely on.

Exit codes: 0 success, 1 the server failed, 2 bad input (a usage error, an invalid strategy or request),
3 the server cannot be reached, 4 the server refused the API token (none, unknown, expired, revoked, or
lacking the scope), 130 cancelled by Ctrl-C. Ctrl-C while following a server's training,
answered "do not cancel", leaves it running there and exits 0 (:data:`EXIT_LEFT_RUNNING`).
"""

from __future__ import annotations

from typing import IO, Any

import click

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_DENIED = 4
EXIT_CANCELLED = 130
#: Stopped following a server's training that goes on: nothing failed, so success.
EXIT_LEFT_RUNNING = 0


class CliFailure(click.ClickException):
    """Ends the command with ``message`` on stderr (no traceback) and ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a class default; ours is per error
        self.details = details or {}

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True, file=file)
        for key, value in self.details.items():
            click.echo(f"  {key}: {value}", err=True, file=file)
