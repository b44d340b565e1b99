"""A sweep's views read the same few SQL statements whatever its number of trials (the trials' operations
in one read, an open trial's history only), and show each trial as its whole operation would: on SQLite
and on PostgreSQL, through the real app on sweeps written straight to its database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from backend.domain.sweeps import intermediate_of
from tests.backend.databases import DATABASES, postgres_database
from tests.backend.sweep_harness import App, fabricated_sweep, sweep_settings

pytestmark = pytest.mark.anyio


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        yield from postgres_database()
    else:
        yield f"sqlite:///{tmp_path / 'var' / 'modelyard.db'}"


@pytest.fixture
async def backend(tmp_path: Path, candles: Path, database_url: str) -> AsyncIterator[App]:
    # A lease of an hour: no heartbeat statement lands inside a counted request.
    app = App(sweep_settings(tmp_path, candles, database_url=database_url, instance_lease_s=3600.0))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def _counted(backend: App, path: str) -> tuple[int, dict[str, Any]]:
    """The statements the app's own engine ran while answering GET ``path`` (Optuna's engine, which
    reads a study's trials for its importances, is its own), but the API tokens' reload (every 2 s,
    whatever the route), and the answer."""
    assert backend.client is not None
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_tokens" not in statement:
            seen.append(statement)

    event.listen(backend.components.db, "before_cursor_execute", count)
    try:
        response = await backend.client.get(path)
    finally:
        event.remove(backend.components.db, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    return len(seen), response.json()


async def _sweep(backend: App, trials: int) -> str:
    return await asyncio.to_thread(fabricated_sweep, backend.components, trials=trials, epochs=30)


async def test_a_sweeps_view_reads_as_many_statements_for_twenty_trials_as_for_four(backend: App) -> None:
    small, large = await _sweep(backend, 4), await _sweep(backend, 20)
    read_small, view_small = await _counted(backend, f"/api/v1/sweeps/{small}")
    read_large, view_large = await _counted(backend, f"/api/v1/sweeps/{large}")
    assert (len(view_small["trials"]), len(view_large["trials"])) == (4, 20)
    # The sweep, its trials, their operations (one read each; it was one more per trial).
    assert read_large == read_small == 3


async def test_the_sweep_list_reads_as_many_statements_for_six_sweeps_as_for_two(backend: App) -> None:
    for _ in range(2):
        await _sweep(backend, 5)
    read_two, two = await _counted(backend, "/api/v1/sweeps")
    for _ in range(4):
        await _sweep(backend, 5)
    read_six, six = await _counted(backend, "/api/v1/sweeps")
    assert (len(two["items"]), len(six["items"])) == (2, 6)
    assert all(item["best"]["model"] is not None for item in six["items"])
    # The sweeps, their trials, their best trials' operations.
    assert read_six == read_two == 3


async def test_each_trial_shows_what_its_whole_operation_says(backend: App) -> None:
    sweep_id = await _sweep(backend, 6)
    _, view = await _counted(backend, f"/api/v1/sweeps/{sweep_id}")
    trials = {
        t.number: t
        for t in backend.components.sweeps.snapshot(backend.components.sweeps.get(sweep_id)).trials
    }
    shown = {t["status"] for t in view["trials"]}
    assert shown == {"completed", "running", "failed"}
    for seen in view["trials"]:
        trial = trials[seen["number"]]
        if not trial.operation_id:  # refused: no operation, the refusal as its error
            assert (seen["status"], seen["error"]) == ("failed", trial.error)
            continue
        op = backend.components.operations.get(trial.operation_id)
        assert seen["status"] == op.status.value
        assert seen["model"] == ((op.result or {}).get("model"))
        expected_error = op.error.message if op.error is not None and seen["status"] == "failed" else None
        assert seen["error"] == expected_error
        if trial.state == "open":  # running: its values so far, from its history
            assert seen["intermediate"] == {
                str(k): v for k, v in intermediate_of("val_loss", op.history).items()
            }
            assert len(seen["intermediate"]) == 15
        else:
            assert seen["intermediate"] == {str(k): v for k, v in trial.reported.items()}
    best = min((t for t in view["trials"] if t["status"] == "completed"), key=lambda t: t["objective"])
    assert view["best"] == best
