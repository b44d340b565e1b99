"""Backends sharing one database: a live backend's trainings are never taken over; a dead one's are."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from backend.adapters.db.engine import build_engine, migrate
from backend.adapters.db.instances import SqlInstanceRepository
from backend.adapters.db.operations import SqlOperationRepository
from backend.domain.instances import BackendInstance
from backend.domain.operations import OperationError, OperationStatus
from backend.errors import ListenError
from backend.server import serve
from backend.services.events import EventBroker
from backend.services.instance_lease import InstanceLease
from backend.services.operations import OperationsService
from backend.settings import Settings
from shared.contracts.training import ProgressUpdate
from tests.backend.conftest import Fakes, start_app, training_body, wait_for_status
from tests.backend.fakes import FakeDatasets, FakeEngine, FakeModelStore, FakeStrategies, FixedClock

REQUEST = {"workload": "strategy", "strategy_yaml": "name: t\n", "symbols": ["EURUSD"], "timeframes": ["1h"]}


def database(settings: Settings) -> Engine:
    engine = build_engine(settings.database_url)
    migrate(engine)
    return engine


def service(engine: Engine, clock: FixedClock, instance_id: str) -> OperationsService:
    return OperationsService(SqlOperationRepository(engine), clock, EventBroker(), instance_id=instance_id)


def running_op(ops: OperationsService, *, cancelling: bool = False) -> str:
    op, _ = ops.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
    ops.mark_running(op.id)
    if cancelling:
        ops.request_cancel(op.id)
    return op.id


def instance(
    instance_id: str, clock: FixedClock, *, age_s: float = 0.0, machine: str | None = None
) -> BackendInstance:
    at = clock.now() - timedelta(seconds=age_s)
    return BackendInstance(instance_id, "box", 999_999, machine, at, at)


@pytest.mark.anyio
async def test_a_second_backend_on_the_same_database_leaves_the_first_ones_training_alone(
    settings: Settings, fakes: Fakes
) -> None:
    fakes.engine.gate = threading.Event()
    first, first_life = await start_app(settings, fakes)
    try:
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            op_id = (await client.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
            await wait_for_status(client, op_id, {"running"})
            other = Fakes(
                FakeEngine(),
                FakeStrategies(),
                FakeDatasets(settings.data_dir),
                FakeModelStore(),
                FixedClock(),
            )
            second, second_life = await start_app(settings, other)
            try:
                assert second.state.components.operations.get(op_id).status is OperationStatus.RUNNING
                assert second.state.components.lease.sweep() == []
            finally:
                await second_life.__aexit__(None, None, None)
            fakes.engine.gate.set()
            done = await wait_for_status(client, op_id, {"completed", "failed"})
            assert done["status"] == "completed", done
            assert other.engine.runs == []
    finally:
        await first_life.__aexit__(None, None, None)


def test_only_operations_of_dead_backends_are_taken_over_running_failed_and_cancelling_cancelled(
    settings: Settings,
) -> None:
    engine, clock = database(settings), FixedClock()
    instances = SqlInstanceRepository(engine)
    instances.register(instance("bk_dead", clock, age_s=3600))
    instances.register(instance("bk_alive", clock, age_s=1))
    dead, alive = service(engine, clock, "bk_dead"), service(engine, clock, "bk_alive")
    dead_running, dead_cancelling = running_op(dead), running_op(dead, cancelling=True)
    alive_running = running_op(alive)
    unowned = running_op(dead)
    with engine.begin() as conn:  # a row from before leases: no owner
        conn.execute(text("UPDATE operations SET owner_id = NULL WHERE id = :id"), {"id": unowned})

    me = service(engine, clock, "bk_me")
    lease = InstanceLease(instances, me, clock, lease_s=60, pid_alive=lambda _pid: True)
    lease.register()
    assert sorted(lease.sweep()) == sorted([dead_running, dead_cancelling, unowned])

    failed = me.get(dead_running)
    assert failed.status is OperationStatus.FAILED
    assert failed.error is not None
    assert failed.error.code == "interrupted"
    assert failed.progress.phase == "failed"
    cancelled = me.get(dead_cancelling)
    assert (cancelled.status, cancelled.progress.phase) == (OperationStatus.CANCELLED, "cancelled")
    assert me.get(unowned).status is OperationStatus.FAILED
    assert me.get(alive_running).status is OperationStatus.RUNNING
    assert {i.id for i in instances.all()} == {"bk_alive", "bk_me"}
    engine.dispose()


def test_a_backend_whose_process_is_gone_from_this_machine_is_dead_before_its_lease_runs_out(
    settings: Settings,
) -> None:
    engine, clock = database(settings), FixedClock()
    instances = SqlInstanceRepository(engine)
    instances.register(instance("bk_killed", clock, machine="box-1"))
    instances.register(instance("bk_elsewhere", clock, machine="box-2"))
    killed, elsewhere = (
        running_op(service(engine, clock, "bk_killed")),
        running_op(service(engine, clock, "bk_elsewhere")),
    )
    me = service(engine, clock, "bk_me")
    lease = InstanceLease(
        instances, me, clock, lease_s=60, pid_alive=lambda _pid: False, machine=lambda: "box-1"
    )
    lease.register()
    assert lease.sweep() == [killed]
    assert me.get(elsewhere).status is OperationStatus.RUNNING
    assert lease.others_alive()
    engine.dispose()


@pytest.mark.anyio
async def test_a_training_taken_over_meanwhile_ends_with_a_warning_not_an_error(
    settings: Settings, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    fakes.engine.gate = threading.Event()
    app, life = await start_app(settings, fakes)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            op_id = (await client.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
            await wait_for_status(client, op_id, {"running"})
            engine = database(settings)
            service(engine, FixedClock(), "bk_other").fail(op_id, OperationError("interrupted", "taken over"))
            caplog.set_level(logging.WARNING, logger="backend.services.local_runner")
            fakes.engine.gate.set()
            deadline = time.monotonic() + 10
            while app.state.components.runner.running and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert app.state.components.runner.running == 0
            engine.dispose()
        assert app.state.components.operations.get(op_id).status is OperationStatus.FAILED
        messages = [r.getMessage() for r in caplog.records if r.name == "backend.services.local_runner"]
        assert any("no longer this backend's" in m for m in messages), messages
        assert not any(r.levelno >= logging.ERROR for r in caplog.records), messages
    finally:
        await life.__aexit__(None, None, None)


def test_a_taken_port_stops_serve_before_it_touches_the_database(settings: Settings, tmp_path: Path) -> None:
    engine, clock = database(settings), FixedClock()
    op_id = running_op(service(engine, clock, "bk_gone"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve(settings.model_copy(update={"host": "127.0.0.1", "port": port}))
    assert service(engine, clock, "bk_check").get(op_id).status is OperationStatus.RUNNING
    engine.dispose()


@pytest.mark.anyio
async def test_a_cancel_made_through_another_backend_stops_the_training_here(
    settings: Settings, fakes: Fakes
) -> None:
    fakes.engine.gate = threading.Event()
    fakes.engine.batches_per_epoch = 100_000
    app, life = await start_app(settings, fakes)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            op_id = (await client.post("/api/v1/trainings", json=training_body())).json()["operation_id"]
            await wait_for_status(client, op_id, {"running"})
            engine = database(settings)
            assert (
                service(engine, FixedClock(), "bk_other").request_cancel(op_id).status
                is OperationStatus.CANCELLING
            )
            engine.dispose()
            app.state.components.operations.report_progress(
                op_id, ProgressUpdate(percentage=5, phase="training")
            )
            fakes.engine.gate.set()
            done = await wait_for_status(client, op_id, {"cancelled", "completed", "failed"})
            assert done["status"] == "cancelled"
    finally:
        await life.__aexit__(None, None, None)
