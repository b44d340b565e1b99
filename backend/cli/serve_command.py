"""``modelyard serve``: the backend (REST API, dashboard) under uvicorn."""

from __future__ import annotations

from typing import Any

import click

from backend.cli.failures import EXIT_BAD_INPUT, EXIT_FAILED, CliFailure

SERVE_HELP = """Run the backend: REST API under /api/v1, OpenAPI at /docs, the dashboard at /.

Everything else comes from the environment (prefix MODELYARD_, and DATABASE_URL): see
backend/settings.py. With embedded defaults it uses SQLite in ./var/modelyard.db and writes
sample data on first start.

Beyond loopback (--host 0.0.0.0) every request needs an API token, and the server refuses to start
until one exists; MODELYARD_AUTH (auto, required, off) says when tokens are required.

\b
Examples:
  modelyard serve
  modelyard tokens create admin --scope admin    # once, before serving the network
  modelyard serve --host 0.0.0.0 --port 8080
  DATABASE_URL=postgresql+psycopg://modelyard@db:5432/modelyard modelyard serve
"""


@click.command(name="serve", help=SERVE_HELP)
@click.option("--host", help="Interface to listen on [default: MODELYARD_HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: MODELYARD_PORT or 8000].")
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve the whole API without tokens wherever it listens (a trusted network only; "
    "MODELYARD_INSECURE_NO_AUTH). Warned about at every start.",
)
def serve_command(host: str | None, port: int | None, insecure_no_auth: bool) -> None:
    from backend.errors import AuthSetupError, ListenError, SettingsError
    from backend.server import serve
    from backend.settings import load_settings

    overrides: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if insecure_no_auth:
        overrides["insecure_no_auth"] = True
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    try:
        serve(settings)
    except AuthSetupError as exc:
        raise CliFailure(exc.message, EXIT_BAD_INPUT) from exc
    except ListenError as exc:
        raise CliFailure(exc.message, EXIT_FAILED) from exc
