"""Options shared by several commands (local folders, the server URL) and the injected environment.

Local folders default like the backend's settings: ``MODELYARD_DATA_DIR`` / ``MODELYARD_MODELS_DIR`` /
``MODELYARD_STRATEGIES_DIR`` / ``MODELYARD_RUNS_DIR``, else ``./data`` ``./models`` ``./strategies``
``./var/runs``. The server comes from ``--server`` or ``MODELYARD_SERVER``; the API token it may require
from ``--token`` or ``MODELYARD_TOKEN`` (every option that takes ``--server`` takes ``--token`` too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click
import httpx

from backend.cli.backend_client import DEFAULT_SERVER, BackendClient, ServerUrlError, server_url
from shared.contracts.operations import RUN_NAME_PATTERN, RUN_NAME_RULE, SLUG_PATTERN, SLUG_RULE
from shared.contracts.tokens import LIFETIME_PATTERN, LIFETIME_RULE, TOKEN_NAME_PATTERN, TOKEN_NAME_RULE
from shared.contracts.training import TrainingRequest

if TYPE_CHECKING:  # importing shared.trainkit loads torch: keep it out of `--help` and remote commands
    from shared.trainkit.cancellation import CancelToken
    from shared.trainkit.executor.types import ProgressCallback, TrainingResult

F = TypeVar("F", bound=Callable[..., Any])


class Executor(Protocol):
    """What the CLI needs of a TrainingExecutor."""

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
    ) -> TrainingResult: ...


ExecutorFactory = Callable[[Path, Path, Path], Executor]


@dataclass
class CliEnv:
    """What the commands are built with; tests pass their own through ``CliRunner.invoke(obj=...)``.

    ``transport`` scripts the backend's answers; ``executor_factory(data_dir, models_dir, runs_dir)``
    replaces the real TrainingExecutor; ``poll_interval_s`` is how often a followed operation is polled.
    """

    transport: httpx.BaseTransport | None = None
    executor_factory: ExecutorFactory | None = None
    poll_interval_s: float = 0.5
    #: From ``--token`` / ``MODELYARD_TOKEN``: sent as ``Authorization: Bearer`` on every request.
    token: str | None = None

    def client(self, server: str) -> BackendClient:
        return BackendClient(server, transport=self.transport, token=self.token)


def cli_env(ctx: click.Context) -> CliEnv:
    env = ctx.find_object(CliEnv)
    return env if env is not None else ctx.ensure_object(CliEnv)


def _folder(flag: str, env: str, default: str, what: str) -> Callable[[F], F]:
    return click.option(
        flag,
        type=click.Path(file_okay=False, path_type=Path),
        envvar=env,
        default=default,
        show_default=True,
        show_envvar=True,
        help=what,
    )


data_dir_option = _folder(
    "--data-dir", "MODELYARD_DATA_DIR", "data", "Folder of candle CSVs ({SYMBOL}_{TF}.csv)."
)
models_dir_option = _folder("--models-dir", "MODELYARD_MODELS_DIR", "models", "Model store folder.")
strategies_dir_option = _folder(
    "--strategies-dir", "MODELYARD_STRATEGIES_DIR", "strategies", "Folder of strategy YAML files."
)
runs_dir_option = _folder(
    "--runs-dir", "MODELYARD_RUNS_DIR", "var/runs", "Where run records (metrics.jsonl …) go."
)


def _checked_server(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A malformed URL (``notaurl``, ``http//x``, ``ftp://x``) is a usage error (exit 2), not a traceback."""
    if value is None:
        return None
    try:
        return server_url(value)
    except ServerUrlError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def _remember_token(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        cli_env(ctx).token = value.strip()


#: ``--token``: not a parameter of the commands; the client they build sends it.
token_option = click.option(
    "--token",
    envvar="MODELYARD_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    expose_value=False,
    callback=_remember_token,
    help="API token (myd_…) for a server that requires one; `modelyard tokens create` makes one.",
)


def _with_token(server: Callable[[F], F]) -> Callable[[F], F]:
    def both(command: F) -> F:
        return server(token_option(command))

    return both


def optional_server_option(what: str) -> Callable[[F], F]:
    """``--server`` (and ``--token``) with no default: without it the command works locally."""
    return _with_token(
        click.option(
            "--server",
            envvar="MODELYARD_SERVER",
            default=None,
            show_envvar=True,
            metavar="URL",
            callback=_checked_server,
            help=f"Backend URL, e.g. {DEFAULT_SERVER}. {what}",
        )
    )


def _matching(pattern: str, rule: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback refusing (exit 2, before any request) values the server's pattern refuses."""
    compiled = re.compile(pattern)

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if item is not None and not compiled.match(item):
                raise click.BadParameter(f"{item!r} is not allowed: use {rule}", ctx=ctx, param=param)
        return value

    return check


#: ``--project`` / ``--tag`` values: what the server accepts as a project or tag.
check_slug = _matching(SLUG_PATTERN, SLUG_RULE)
#: ``--name`` values: what the server accepts as an experiment name.
check_run_name = _matching(RUN_NAME_PATTERN, RUN_NAME_RULE)
#: Token names and ``--expires`` lifetimes: what ``POST /api/v1/tokens`` accepts.
check_token_name = _matching(TOKEN_NAME_PATTERN, TOKEN_NAME_RULE)
check_lifetime = _matching(LIFETIME_PATTERN, LIFETIME_RULE)


server_option = _with_token(
    click.option(
        "--server",
        envvar="MODELYARD_SERVER",
        default=DEFAULT_SERVER,
        show_default=True,
        show_envvar=True,
        metavar="URL",
        callback=_checked_server,
        help="Backend URL.",
    )
)
