"""``modelyard projects``: the projects on the backend, their operations counted by status."""

from __future__ import annotations

import click
from rich.console import Console

from backend.cli.options import cli_env, server_option
from backend.cli.tables import projects_table


@click.command(name="projects")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@server_option
@click.pass_context
def projects_command(ctx: click.Context, as_json: bool, server: str) -> None:
    """List the projects on the server, most recently active first: how many operations each has, per
    status, and when one of them last changed. A training names its project with `--project`
    (`default` without it). Needs a running server (`modelyard serve`).

    \b
    Examples:
      modelyard projects
      modelyard ops list --project fx
    """
    with cli_env(ctx).client(server) as client:
        projects = client.list_projects()
    if as_json:
        click.echo(projects.model_dump_json(indent=2))
    elif not projects.items:
        click.echo("no projects yet: start a training with `modelyard train … --project NAME --server URL`")
    else:
        Console().print(projects_table(projects.items))
