"""``modelyard tokens …``: create, list and revoke API tokens.

Without ``--server`` they work on the backend's database directly, found through the same settings as
``modelyard serve`` (DATABASE_URL / MODELYARD_DATABASE_URL): that is how the first admin token is made,
before the server may start beyond loopback. With ``--server`` they go through the API (an admin token).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from backend.cli.failures import EXIT_BAD_INPUT, EXIT_FAILED, CliFailure
from backend.cli.options import check_lifetime, check_token_name, cli_env, optional_server_option
from shared.contracts.tokens import ScopeName, TokenView

if TYPE_CHECKING:
    from backend.services.access_tokens import TokenService

_DIRECT = "Without it: straight on the database of this machine's backend settings."


@click.group(name="tokens")
def tokens_group() -> None:
    """API tokens: what a client sends as --token (MODELYARD_TOKEN) when the server requires one.

    \b
    Scopes: read (every GET), train (+ submit, cancel, upload data), admin (+ delete models,
    change the execution mode, manage tokens).
    """


@tokens_group.command(name="create")
@click.argument("name", callback=check_token_name)
@click.option(
    "--scope", type=click.Choice([s.value for s in ScopeName]), required=True, help="What it may do."
)
@click.option(
    "--expires",
    metavar="LIFETIME",
    callback=check_lifetime,
    help="Lifetime, e.g. 30d, 12h, 2w [default: none].",
)
@optional_server_option(_DIRECT)
@click.pass_context
def tokens_create(ctx: click.Context, name: str, scope: str, expires: str | None, server: str | None) -> None:
    """Create a token and print it, once: only its hash is stored.

    \b
    Examples:
      modelyard tokens create admin --scope admin
      modelyard tokens create ci --scope train --expires 30d
      export MODELYARD_TOKEN=$(modelyard tokens create laptop --scope train)
    """
    if server:
        with cli_env(ctx).client(server) as client:
            created = client.create_token(name, scope, expires)
        view, secret = TokenView.model_validate(created.model_dump()), created.token
    else:
        from backend.api.tokens import token_view
        from backend.domain.tokens import TokenScope, parse_lifetime

        try:
            lifetime = parse_lifetime(expires) if expires else None
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from exc
        with _local_tokens() as tokens:
            token, secret = tokens.create(name, TokenScope(scope), lifetime)
        view = token_view(token, token.created_at)
    until = f", expires {view.expires_at:%Y-%m-%d %H:%M} UTC" if view.expires_at else ""
    click.echo(f"token {view.name} created (scope {scope}{until}); it is shown this once:", err=True)
    click.echo(secret)


@tokens_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@optional_server_option(_DIRECT)
@click.pass_context
def tokens_list(ctx: click.Context, as_json: bool, server: str | None) -> None:
    """Every token with its scopes, state and times (never the token itself)."""
    if server:
        with cli_env(ctx).client(server) as client:
            views = client.list_tokens().items
    else:
        from backend.api.tokens import token_view

        with _local_tokens() as tokens:
            now = tokens.now()
            views = [token_view(t, now) for t in tokens.list_tokens()]
    if as_json:
        click.echo("[" + ",".join(v.model_dump_json() for v in views) + "]")
    elif not views:
        click.echo("no tokens: the server needs none on loopback (modelyard tokens create NAME --scope …)")
    else:
        Console().print(_tokens_table(views))


@tokens_group.command(name="revoke")
@click.argument("name", callback=check_token_name)
@optional_server_option(_DIRECT)
@click.pass_context
def tokens_revoke(ctx: click.Context, name: str, server: str | None) -> None:
    """Revoke a token: refused at once by the server that revoked it, within seconds by the others."""
    if server:
        with cli_env(ctx).client(server) as client:
            client.revoke_token(name)
    else:
        with _local_tokens() as tokens:
            tokens.revoke(name)
    click.echo(f"token {name} revoked")


@contextmanager
def _local_tokens() -> Iterator[TokenService]:
    from sqlalchemy.exc import SQLAlchemyError

    from backend.components import standalone_tokens
    from backend.errors import SettingsError, TokenExistsError, TokenNotFoundError
    from backend.settings import load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    try:
        tokens, db = standalone_tokens(settings)
    except SQLAlchemyError as exc:
        raise CliFailure(f"cannot open the database: {exc}", EXIT_FAILED) from exc
    try:
        yield tokens
    except (TokenExistsError, TokenNotFoundError) as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    finally:
        db.dispose()


def _tokens_table(views: list[TokenView]) -> Table:
    table = Table(title="API tokens", title_justify="left")
    for column in ("name", "scope", "state", "created", "expires", "last used"):
        table.add_column(column, no_wrap=True)
    for v in views:
        table.add_row(
            v.name,
            v.scopes[-1].value,
            v.state,
            f"{v.created_at:%Y-%m-%d %H:%M}",
            f"{v.expires_at:%Y-%m-%d %H:%M}" if v.expires_at else "-",
            f"{v.last_used_at:%Y-%m-%d %H:%M}" if v.last_used_at else "-",
        )
    return table
