"""SQL statements and milliseconds of one sweep view, by the sweep's number of trials.

For each ``--trials`` count a sweep is written straight to a fresh database
(``tests.backend.sweep_harness.fabricated_sweep``: completed trials with a model and ``--epochs``
history rows, a running, a failed and a refused one) by the app that then, nothing of it read yet,
answers ``GET /api/v1/sweeps`` and then ``GET /api/v1/sweeps/{id}`` (in-process, through
ASGITransport): the first of each (cold: nothing read yet) and the median of ``--repeat`` more. A
statement is a ``before_cursor_execute`` on any engine (the app's and Optuna's).

Usage: python benchmarks/sweep_view_queries.py [--trials 20 200 --epochs 50 --repeat 20]
(``--database-url postgresql+psycopg://…/db`` for PostgreSQL: an empty database, its sweeps left.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, event

from tests.backend.sweep_harness import App, fabricated_sweep, sample_candles, sweep_settings


class Statements:
    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._seen)


async def _timed(app: App, path: str, statements: Statements) -> tuple[int, float]:
    assert app.client is not None
    before, started = statements.count, time.perf_counter()
    response = await app.client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return statements.count - before, elapsed


async def measure(root: Path, candles: Path, trials: int, args: argparse.Namespace) -> None:
    changes = {"database_url": args.database_url} if args.database_url else {}
    settings = sweep_settings(root, candles, **changes)
    app = App(settings)
    await app.start()
    statements = Statements()
    try:
        sweep_id = await asyncio.to_thread(
            fabricated_sweep, app.components, trials=trials, epochs=args.epochs
        )
        statements.count = 0
        for path in ("/api/v1/sweeps", f"/api/v1/sweeps/{sweep_id}"):
            cold = await _timed(app, path, statements)
            warm = [await _timed(app, path, statements) for _ in range(args.repeat)]
            print(
                f"{trials:>5} trials  GET {path.replace(sweep_id, '{id}'):<22}"
                f" cold: {cold[0]:>4} statements {cold[1]:8.1f} ms   warm (median of {args.repeat}):"
                f" {statistics.median(w[0] for w in warm):>4} statements"
                f" {statistics.median(w[1] for w in warm):8.1f} ms",
                flush=True,
            )
    finally:
        statements.close()
        await app.stop()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sweep-view-") as tmp:
        candles = sample_candles(Path(tmp) / "candles")
        for trials in args.trials:
            await measure(Path(tmp) / f"n{trials}", candles, trials, args)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
