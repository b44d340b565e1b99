"""The ``modelyard`` command: the root group, its subcommands, and the one place client errors become
exit codes."""

from __future__ import annotations

from typing import Any

import click

from backend.cli.backend_client import BackendApiError, BackendUnreachableError
from backend.cli.catalog_commands import data_group, strategies_group
from backend.cli.command_commands import commands_group
from backend.cli.failures import EXIT_BAD_INPUT, EXIT_DENIED, EXIT_FAILED, EXIT_UNREACHABLE, CliFailure
from backend.cli.host_command import host_command
from backend.cli.model_commands import models_group
from backend.cli.ops_commands import ops_group
from backend.cli.options import CliEnv
from backend.cli.project_commands import projects_command
from backend.cli.ray_job_command import ray_job_command
from backend.cli.serve_command import serve_command
from backend.cli.sweep_commands import sweep_group
from backend.cli.token_commands import tokens_group
from backend.cli.train_command import train_command

ROOT_HELP = """modelyard: train models from strategy files, here or on a modelyard server.

\b
A first training, no server needed:
  modelyard data sample
  modelyard strategies list
  modelyard train strategies/trend_momentum.yaml --symbol EURUSD --timeframe 1h
  modelyard models list

\b
Your own training program, registered as a command template (samples in commands/):
  modelyard commands list
  modelyard commands run toy -p steps=300

\b
Against a server (`modelyard serve`, or MODELYARD_SERVER=URL):
  modelyard train trend_momentum --symbol EURUSD --timeframe 1h --server http://127.0.0.1:8000
  modelyard ops list
  modelyard projects
  modelyard sweep start sweep.yaml      # a hyperparameter search, each trial an operation

\b
A server others reach (every request then needs a token; see docs/operations.md):
  modelyard tokens create admin --scope admin
  modelyard serve --host 0.0.0.0
  modelyard ops list --server http://that-box:8000 --token myd_…

\b
A GPU host for host mode (on the Mac or CUDA box; backend: MODELYARD_HOSTS=http://that-box:5002):
  modelyard host --bind 0.0.0.0 --port 5002
"""


class ModelyardGroup(click.Group):
    """Turns the backend client's errors into plain messages and exit codes for every subcommand."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BackendUnreachableError as exc:
            raise CliFailure(str(exc), EXIT_UNREACHABLE) from exc
        except BackendApiError as exc:
            if exc.status_code in (401, 403):
                raise CliFailure(denied_message(exc), EXIT_DENIED) from exc
            code = EXIT_BAD_INPUT if 400 <= exc.status_code < 500 else EXIT_FAILED
            status = f"HTTP {exc.status_code}, " if exc.status_code else ""
            raise CliFailure(f"{exc.message} ({status}{exc.code})", code, exc.details) from exc


def denied_message(exc: BackendApiError) -> str:
    """What to do about a refused token, in the words of the option and the command that fix it."""
    if exc.status_code == 403:
        return f"{exc.message}; ask an admin for a token with that scope"
    create = "create one on the server with `modelyard tokens create NAME --scope read|train|admin`"
    reason = exc.details.get("reason")
    if reason in ("missing", "not_loopback"):
        return f"the server needs a token: pass --token or set MODELYARD_TOKEN; {create}"
    return f"the server refused the token ({exc.message}): check --token / MODELYARD_TOKEN, or {create}"


@click.group(cls=ModelyardGroup, help=ROOT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelyard", prog_name="modelyard")
@click.pass_context
def cli(ctx: click.Context) -> None:
    ctx.ensure_object(CliEnv)


for command in (
    data_group,
    strategies_group,
    commands_group,
    train_command,
    ops_group,
    projects_command,
    models_group,
    sweep_group,
    serve_command,
    tokens_group,
    host_command,
    ray_job_command,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point (``modelyard = "backend.cli:main"``)."""
    cli(prog_name="modelyard")
