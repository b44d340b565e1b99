"""``modelyard host``: run the host service on this machine (the GPU box or the Mac).

The backend never imports the host service (an import-linter contract checks it): this command
replaces itself with ``python -m host_service`` through ``os.execv``, so signals (Ctrl-C, a service
manager's SIGTERM) reach the host directly and its exit code is the command's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

HOST_HELP = """Run the host service: trains what a backend dispatches, on this machine's best device
(CUDA > MPS > CPU), and sends the models back.

Settings come from the environment too (MODELYARD_HOST_*, MODELYARD_SHARED_SECRET). Binding to an
address other than loopback is refused unless MODELYARD_SHARED_SECRET is set (the same value as on the
backend, whose MODELYARD_HOSTS must list this host's URL).

\b
Examples:
  modelyard host
  MODELYARD_SHARED_SECRET=... modelyard host --bind 0.0.0.0 --port 5002 --capacity 2
  modelyard host --commands-dir /srv/modelyard/commands
"""


def host_argv(
    bind: str | None,
    port: int | None,
    work_dir: Path | None,
    capacity: int | None,
    commands_dir: Path | None = None,
) -> list[str]:
    """The command line this command execs: the interpreter running modelyard, ``-m host_service``."""
    argv = [sys.executable, "-m", "host_service"]
    for flag, value in (
        ("--bind", bind),
        ("--port", port),
        ("--work-dir", work_dir),
        ("--capacity", capacity),
        ("--commands-dir", commands_dir),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


@click.command(name="host", help=HOST_HELP)
@click.option("--bind", help="Address to listen on [default: MODELYARD_HOST_BIND or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: MODELYARD_HOST_PORT or 5002].")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sessions, results and the data cache [default: MODELYARD_HOST_WORK_DIR or var/host].",
)
@click.option("--capacity", type=click.IntRange(1, 64), help="Trainings at once [default: 1].")
@click.option(
    "--commands-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="This host's command templates, the only commands it runs; keep them in sync with the "
    "backend's [default: MODELYARD_HOST_COMMANDS_DIR or {work dir}/commands].",
)
def host_command(
    bind: str | None,
    port: int | None,
    work_dir: Path | None,
    capacity: int | None,
    commands_dir: Path | None,
) -> None:
    argv = host_argv(bind, port, work_dir, capacity, commands_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
