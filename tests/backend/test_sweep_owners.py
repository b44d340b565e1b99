"""A sweep has one owner: two backends on one PostgreSQL database, only the owner drives the sweep and a
survivor adopts it when the owner dies; trials a crash left half-started are settled on adoption."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.adapters.db.sweeps import SqlSweepRepository
from backend.adapters.optuna_studies import OptunaStudies, study_name
from backend.domain.sweeps import SweepTrial
from backend.services.sweep_admission import trial_request
from shared.contracts.sweeps import StartSweepRequest
from tests.backend.databases import postgres_database
from tests.backend.sweep_harness import (
    App,
    finished,
    strategy_sweep,
    sweep_settings,
    wait_sweep,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


def slow_sweep(n_trials: int) -> dict[str, object]:
    body = strategy_sweep(n_trials=n_trials, parallelism=1)
    body["base"]["overrides"] = {"epochs": 10, "early_stopping_patience": 0, "batch_size": 128}  # type: ignore[index]
    return body


def trial_owners(app: App, sweep_id: str) -> list[str | None]:
    with app.components.db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT o.owner_id FROM sweep_trials t JOIN operations o ON o.id = t.operation_id "
                "WHERE t.sweep_id = :id ORDER BY t.number"
            ),
            {"id": sweep_id},
        )
        return [row[0] for row in rows]


@pytest.mark.postgres
async def test_only_the_owner_drives_a_sweep_and_a_survivor_adopts_it_when_the_owner_dies(
    tmp_path: Path, candles: Path, postgres_url: str
) -> None:
    shared = tmp_path / "shared"  # one models volume, as replicas behind a load balancer share
    common = {"database_url": postgres_url, "models_dir": shared / "models", "sweep_poll_interval_s": 0.2}
    a = App(sweep_settings(tmp_path / "a", candles, **common))
    b = App(sweep_settings(tmp_path / "b", candles, **common))
    streams = sys.stdout, sys.stderr  # two apps in one process wrap them twice
    client_a = await a.start()
    client_b = await b.start()
    try:
        me_a, me_b = (app.components.operations.instance_id for app in (a, b))
        started = await client_a.post("/api/v1/sweeps", json=slow_sweep(3))
        assert started.status_code == 202, started.text
        sweep_id = started.json()["sweep_id"]
        # B sees the sweep through the shared database while A's first trial reports its epochs.
        await wait_sweep(client_b, sweep_id, lambda body: any(t["intermediate"] for t in body["trials"]))
        await asyncio.to_thread(b.components.sweeps.tick)  # B's pass leaves a live owner's sweep alone
        assert b.components.sweeps.get(sweep_id).owner_id == me_a
        assert trial_owners(a, sweep_id) == [me_a]

        await a.stop()  # the owner goes away mid-trial: its trial ends interrupted, its lease row goes
        done = await wait_sweep(client_b, sweep_id, finished)
        assert done["status"] == "completed", done
        assert done["counts"] == {"interrupted": 1, "complete": 3}
        assert b.components.sweeps.get(sweep_id).owner_id == me_b
        assert trial_owners(b, sweep_id) == [me_a, me_b, me_b, me_b]  # B started every trial after
        model = done["best"]["model"]
        resolved = await client_b.get(
            f"/api/v1/models/{model['strategy']}/{model['name']}/versions/{done['best_alias']}"
        )
        assert resolved.json()["version"] == model["version"]
    finally:
        await b.stop()
        await a.stop()
        sys.stdout, sys.stderr = streams


async def test_trials_a_crash_left_half_started_are_settled_when_the_sweep_is_adopted(
    tmp_path: Path, candles: Path
) -> None:
    settings = sweep_settings(tmp_path, candles)
    app = App(settings)
    client = await app.start()
    try:
        components = app.components
        await components.sweep_driver.stop()  # nothing drives while the crash's leftovers are made
        started = await client.post("/api/v1/sweeps", json=strategy_sweep(n_trials=3, parallelism=1))
        sweep_id = started.json()["sweep_id"]
        repo = SqlSweepRepository(components.db)
        sweep = repo.get(sweep_id)
        assert sweep is not None
        assert repo.adopt(sweep_id, previous_owner=sweep.owner_id, new_owner="bk_crashed")
        request = StartSweepRequest.model_validate(sweep.request["sweep"])
        studies = OptunaStudies(settings.database_url)
        try:
            studies.ask(sweep_id, request)  # trial 0: asked, then the crash, before its row
            trial_id, number, params = studies.ask(sweep_id, request)  # trial 1: its row, no operation
            repo.put_trial(SweepTrial(sweep_id, number, trial_id, "", params))
            trial_id, number, params = studies.ask(sweep_id, request)  # trial 2: its operation, id unrecorded
            repo.put_trial(SweepTrial(sweep_id, number, trial_id, "", params))
            base = request.base.model_dump(mode="json", exclude={"idempotency_key"})
            body = trial_request(base, sweep.request["strategy"], params, sweep_id=sweep_id, number=number)
            op, _ = await asyncio.to_thread(components.training.start_training, body, submitted_by=None)
        finally:
            studies.close()

        await components.sweep_driver.start()  # its first pass: bk_crashed has no lease, adopt
        done = await wait_sweep(client, sweep_id, finished)
        assert done["status"] == "completed", done
        assert done["counts"] == {"interrupted": 2, "complete": 3}  # three trials counted, as asked
        trials = {t["number"]: t for t in done["trials"]}
        assert sorted(trials) == [0, 1, 2, 3, 4]
        assert (trials[0]["status"], trials[1]["status"]) == ("failed", "failed")
        assert (trials[2]["operation_id"], trials[2]["status"]) == (op.id, "completed")
        with components.db.connect() as conn:
            states = conn.execute(
                text(
                    "SELECT t.number, t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
                    "WHERE s.study_name = :name ORDER BY t.number"
                ),
                {"name": study_name(sweep_id)},
            )
            assert [tuple(row) for row in states] == [
                (0, "FAIL"), (1, "FAIL"), (2, "COMPLETE"), (3, "COMPLETE"), (4, "COMPLETE")
            ]  # fmt: skip
    finally:
        await app.stop()
