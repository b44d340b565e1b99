"""``python -m host_service [--bind ADDR] [--port 5002] [--work-dir DIR] [--capacity N] [--commands-dir DIR]``:
run the host."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from host_service.settings import HostSettings

EXIT_USAGE = 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m host_service", description="Run the modelyard host service."
    )
    parser.add_argument("--bind", help="address to listen on (default 127.0.0.1, MODELYARD_HOST_BIND)")
    parser.add_argument("--port", type=int, help="port (default 5002, MODELYARD_HOST_PORT)")
    parser.add_argument(
        "--work-dir", type=Path, help="sessions, results, data cache (MODELYARD_HOST_WORK_DIR)"
    )
    parser.add_argument("--capacity", type=int, help="trainings at once (default 1, MODELYARD_HOST_CAPACITY)")
    parser.add_argument(
        "--commands-dir",
        type=Path,
        help="this host's command templates, the only ones it runs (default {work_dir}/commands, "
        "MODELYARD_HOST_COMMANDS_DIR)",
    )
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> HostSettings:
    given = {
        "bind": args.bind,
        "port": args.port,
        "work_dir": args.work_dir,
        "capacity": args.capacity,
        "commands_dir": args.commands_dir,
    }
    return HostSettings(**{key: value for key, value in given.items() if value is not None})


def refusal(settings: HostSettings) -> str | None:
    """Why these settings must not start (an open port without authentication), or None."""
    if settings.loopback_only or settings.secrets:
        return None
    return (
        f"refusing to listen on {settings.bind}: without a shared secret anyone who can reach this port "
        "could start trainings and read models. Set MODELYARD_SHARED_SECRET (the same value as on the "
        "backend) or bind to 127.0.0.1."
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(parse_args(argv))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        variable = f"MODELYARD_{field.upper()}" if "secret" in field else f"MODELYARD_HOST_{field.upper()}"
        print(f"error: {variable}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    reason = refusal(settings)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_USAGE
    import uvicorn

    from host_service.main import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.bind, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
