"""N backends on one database, in process: owners, row-locked queue claims, adoption of a dead owner's
queued and host operations, and one model version per operation decided by the database.

Each "backend" here is its own OperationsService (its own instance id) on one shared engine, SQLite and
PostgreSQL alike; the real-process version of the same story is tests/e2e/test_multi_backend.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from backend.adapters.db.engine import migrate
from backend.adapters.db.instances import SqlInstanceRepository
from backend.adapters.db.operations import SqlOperationRepository
from backend.adapters.db.replay import SqlReplayGuard
from backend.adapters.db.results import SqlResultClaimRepository
from backend.adapters.db.tables import OperationRow
from backend.adapters.model_validation import CheckpointValidator
from backend.adapters.storage import LocalModelStore
from backend.domain.instances import BackendInstance
from backend.domain.operations import OperationError, OperationStatus, transition
from backend.domain.results import StoredVersion
from backend.errors import ResultConflictError, ResultRejectedError
from backend.services import operations as operations_module
from backend.services.events import EventBroker
from backend.services.instance_lease import InstanceLease
from backend.services.operations import OperationsService
from backend.services.result_ingest import IngestLimits, ResultIngest, parse_payload
from shared.contracts.ray_jobs import UPLOADED_MODEL_URL
from shared.contracts.replay import ReplayError
from shared.trainkit.errors import StorageError
from shared.trainkit.executor.types import ModelArtifact, ModelRef
from shared.trainkit.storage import model_storage
from tests.backend.databases import DATABASES, empty_database
from tests.backend.fakes import FixedClock
from tests.backend.host_fakes import FakeHostClient, result_payload, tiny_model

REQUEST = {"workload": "strategy", "strategy_yaml": "name: t\n", "symbols": ["EURUSD"], "timeframes": ["1h"]}


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    for engine in empty_database(request.param, tmp_path):
        migrate(engine)
        yield engine


def backend(db: Engine, clock: FixedClock, instance_id: str) -> OperationsService:
    return OperationsService(SqlOperationRepository(db), clock, EventBroker(), instance_id=instance_id)


def register(db: Engine, clock: FixedClock, instance_id: str, *, age_s: float = 0.0) -> None:
    at = clock.now() - timedelta(seconds=age_s)
    SqlInstanceRepository(db).register(BackendInstance(instance_id, "box", 999_999, None, at, at))


def host_op(ops: OperationsService, session_id: str = "hs_1") -> str:
    """A host-mode operation running as ``session_id`` on http://h1, owned by ``ops``."""
    op, _ = ops.create(op_type="training", request=REQUEST, execution_mode="host", mode_reason="t")

    def run(current: object) -> object:
        return transition(op, OperationStatus.RUNNING, ops.now()).with_changes(
            host_url="http://h1", host_session_id=session_id, attempts=1
        )

    ops.update(op.id, run)  # type: ignore[arg-type]
    return op.id


def test_an_operation_is_claimed_only_by_its_owner_and_only_once(db: Engine) -> None:
    clock = FixedClock()
    a, b = backend(db, clock, "bk_a"), backend(db, clock, "bk_b")
    op, _ = a.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
    assert op.owner_id == "bk_a"  # the backend that accepted it queues it
    assert b.mark_running(op.id) is None  # another backend does not run it while bk_a has it
    assert a.mark_running(op.id) is not None
    assert a.mark_running(op.id) is None  # claimed once
    unowned, _ = a.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
    SqlOperationRepository(db).adopt(unowned.id, previous_owner="bk_a", new_owner="bk_b")
    assert a.mark_running(unowned.id) is None  # adopted away while it waited in bk_a's queue
    assert b.mark_running(unowned.id) is not None


@pytest.mark.parametrize("db", [DATABASES[1]], indirect=True)  # SQLite: one writer, the status CAS
def test_a_queue_claim_skips_a_row_another_backend_holds_locked(db: Engine) -> None:
    clock = FixedClock()
    a, b = backend(db, clock, "bk_a"), backend(db, clock, "bk_b")
    op, _ = a.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
    with Session(db) as holder, holder.begin():
        # Another process is claiming it right now (its transaction holds the row).
        holder.execute(select(OperationRow).where(OperationRow.id == op.id).with_for_update())
        assert a.mark_running(op.id) is None  # skipped at once, not waited for
    assert b.mark_running(op.id) is None  # bk_a's, not bk_b's
    assert a.mark_running(op.id) is not None
    assert a.get(op.id).owner_id == "bk_a"


def test_a_stale_snapshot_from_a_backend_that_lost_the_operation_is_not_written(db: Engine) -> None:
    clock = FixedClock()
    a, b = backend(db, clock, "bk_a"), backend(db, clock, "bk_b")
    repo = SqlOperationRepository(db)
    op_id = host_op(a)
    snapshot = repo.get(op_id)
    assert snapshot is not None
    assert repo.adopt(op_id, previous_owner="bk_other", new_owner="bk_b") is False  # CAS on the owner
    assert repo.adopt(op_id, previous_owner="bk_a", new_owner="bk_b") is True
    # A's late progress write (its view still says it owns the operation) is refused, not merged.
    assert repo.save(snapshot.with_changes(device="cuda:0"), expected=OperationStatus.RUNNING) is False
    stored = b.get(op_id)
    assert (stored.owner_id, stored.device) == ("bk_b", None)
    assert b.owned_elsewhere(snapshot)
    assert not b.owned_elsewhere(stored)


def test_a_dead_backends_queued_and_host_operations_are_adopted_its_local_training_failed(
    db: Engine,
) -> None:
    clock = FixedClock()
    register(db, clock, "bk_dead", age_s=3600)
    register(db, clock, "bk_alive", age_s=1)
    dead, alive = backend(db, clock, "bk_dead"), backend(db, clock, "bk_alive")
    dead_host, alive_host = host_op(dead, "hs_dead"), host_op(alive, "hs_alive")
    dead_queued, _ = dead.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
    dead_local, _ = dead.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
    dead.mark_running(dead_local.id)

    me = backend(db, clock, "bk_me")
    lease = InstanceLease(SqlInstanceRepository(db), me, clock, lease_s=60, pid_alive=lambda _pid: True)
    requeued: list[str] = []
    lease.on_pending_adopted(requeued.append)
    lease.register()
    assert sorted(lease.sweep()) == sorted([dead_host, dead_queued.id, dead_local.id])
    assert requeued == []  # at start the restart's own re-queue runs them (the runners are not up yet)

    assert (me.get(dead_host).owner_id, me.get(dead_host).status) == ("bk_me", OperationStatus.RUNNING)
    assert (me.get(dead_queued.id).owner_id, me.get(dead_queued.id).status) == (
        "bk_me",
        OperationStatus.PENDING,
    )
    assert me.get(dead_local.id).status is OperationStatus.FAILED  # its training died with its backend
    assert me.get(alive_host).owner_id == "bk_alive"  # a live backend's work is never touched

    # Later sweeps adopt and hand the queued ones to this backend's runners at once.
    register(db, clock, "bk_later", age_s=3600)
    later = backend(db, clock, "bk_later")
    queued_later, _ = later.create(
        op_type="training", request=REQUEST, execution_mode="host", mode_reason="t"
    )
    assert lease.sweep() == [queued_later.id]
    assert requeued == [queued_later.id]


def test_only_one_of_two_backends_adopts_a_dead_owners_operation(db: Engine) -> None:
    clock = FixedClock()
    register(db, clock, "bk_dead", age_s=3600)
    op_id = host_op(backend(db, clock, "bk_dead"))
    first, second = backend(db, clock, "bk_1"), backend(db, clock, "bk_2")
    stale = first.get(op_id)  # both read the dead owner before either adopts
    assert first.adopt(stale) is True
    assert second.adopt(stale) is False
    assert second.get(op_id).owner_id == "bk_1"


def test_a_result_claim_is_won_once_recorded_and_taken_over_from_a_dead_holder(db: Engine) -> None:
    clock = FixedClock()
    op_id = host_op(backend(db, clock, "bk_a"))
    other_id = host_op(backend(db, clock, "bk_a"), "hs_2")
    claims = SqlResultClaimRepository(db, lease_s=10)
    register(db, clock, "bk_a")
    assert not claims.claimed(op_id)
    first = claims.claim(op_id, "bk_a", clock.now())
    assert (first.won, first.fresh, claims.claimed(op_id)) == (True, True, True)
    busy = claims.claim(op_id, "bk_b", clock.now())
    assert (busy.won, busy.holder, busy.stored) == (False, "bk_a", None)  # bk_a is alive and storing
    claims.record(op_id, "bk_a", StoredVersion("trend", "EURUSD_1h", 3))
    done = claims.claim(op_id, "bk_b", clock.now())
    assert (done.won, done.stored) == (False, StoredVersion("trend", "EURUSD_1h", 3))

    assert claims.claim(other_id, "bk_gone", clock.now()).won  # bk_gone has no lease: it died storing
    taken = claims.claim(other_id, "bk_b", clock.now())
    assert (taken.won, taken.fresh) == (True, False)  # bk_gone may have stored a version: look for it
    claims.release(other_id, "bk_b")  # a refused result gives the claim back
    assert not claims.claimed(other_id)
    assert claims.claim(other_id, "bk_a", clock.now()).won


@pytest.mark.anyio
async def test_two_backends_ingesting_the_same_result_at_once_store_one_version(
    db: Engine, tmp_path: Path
) -> None:
    clock = FixedClock()
    register(db, clock, "bk_a")
    register(db, clock, "bk_b")
    a, b = backend(db, clock, "bk_a"), backend(db, clock, "bk_b")
    op_id = host_op(a)
    model, config = tiny_model()
    (tmp_path / "model.pt").write_bytes(model)
    payload = parse_payload(result_payload(op_id, "hs_1", tmp_path / "model.pt", config))
    store = LocalModelStore.at(tmp_path / "shared-models")  # one volume, two backends

    outcomes = await asyncio.gather(
        _ingest(db, a, store, wait_s=30).ingest(payload), _ingest(db, b, store, wait_s=30).ingest(payload)
    )
    assert sorted(o.duplicate for o in outcomes) == [False, True]
    versions = store.list_versions("trend", "EURUSD_1h")
    assert [v["version"] for v in versions] == [1]
    assert a.get(op_id).status is OperationStatus.COMPLETED
    with db.connect() as conn:
        stored = conn.execute(
            text("SELECT version FROM operation_results WHERE operation_id = :id"), {"id": op_id}
        )
        assert stored.scalar_one() == 1


class CountingStore(LocalModelStore):
    """The real store; counts the searches for an operation's version (each reads every version's
    metadata); ``fail_after_save`` raises once a version was stored, as a failed fsync after the rename."""

    def __init__(self, root: Path, *, fail_after_save: bool = False) -> None:
        super().__init__(LocalModelStore.at(root).storage)
        self.searches = 0
        self._fail_after_save = fail_after_save

    def find_by_operation(self, strategy: str, name: str, operation_id: str) -> ModelRef | None:
        self.searches += 1
        return super().find_by_operation(strategy, name, operation_id)

    def save(self, artifact: ModelArtifact) -> ModelRef:
        stored = super().save(artifact)
        if self._fail_after_save:
            raise StorageError(f"could not fsync the folder of v{stored.version}", file=stored.path)
        return stored


def _ingest(db: Engine, ops: OperationsService, store: LocalModelStore, *, wait_s: float = 1) -> ResultIngest:
    claims = SqlResultClaimRepository(db, lease_s=60)
    limits = IngestLimits(claim_wait_s=wait_s, claim_poll_s=0.01)
    return ResultIngest(ops, store, CheckpointValidator(), FakeHostClient(), claims=claims, limits=limits)


def _one_backend(db: Engine, tmp_path: Path) -> tuple[FixedClock, OperationsService, dict[str, object]]:
    """Backend bk_a, alive, and a real model file at ``tmp_path/model.pt``; its config."""
    clock = FixedClock()
    register(db, clock, "bk_a")
    model, config = tiny_model()
    (tmp_path / "model.pt").write_bytes(model)
    return clock, backend(db, clock, "bk_a"), config


@pytest.mark.anyio
async def test_a_first_ingest_searches_no_version_and_one_after_a_crash_finds_the_stored_one(
    db: Engine, tmp_path: Path
) -> None:
    clock, a, config = _one_backend(db, tmp_path)
    store = CountingStore(tmp_path / "models")
    first = host_op(a)
    await _ingest(db, a, store).ingest(
        parse_payload(result_payload(first, "hs_1", tmp_path / "model.pt", config))
    )
    assert store.searches == 0  # no earlier claim: nothing of this operation can be stored
    assert a.get(first).status is OperationStatus.COMPLETED
    later = SqlResultClaimRepository(db, lease_s=60).claim(first, "bk_b", clock.now())
    assert later.stored == StoredVersion("trend", "EURUSD_1h", 1)  # recorded once the operation completed

    # bk_gone stored the model of the next operation and died before recording it and completing it.
    crashed = host_op(a, "hs_2")
    payload = parse_payload(result_payload(crashed, "hs_2", tmp_path / "model.pt", config))
    assert SqlResultClaimRepository(db, lease_s=60).claim(crashed, "bk_gone", clock.now()).won
    earlier = store.save(
        ModelArtifact(
            strategy="trend",
            name="EURUSD_1h",
            model_bytes=(tmp_path / "model.pt").read_bytes(),
            config=config,
            metrics={},
            features={},
            metadata={"operation_id": crashed},
        )
    )
    outcome = await _ingest(db, a, store).ingest(payload)
    assert isinstance(outcome.model, ModelRef)
    assert outcome.model.version == earlier.version
    assert sorted(v["version"] for v in store.list_versions("trend", "EURUSD_1h")) == [1, 2]  # no third


@pytest.mark.anyio
async def test_a_store_failing_after_its_rename_keeps_the_version_and_its_claim(
    db: Engine, tmp_path: Path
) -> None:
    clock, a, config = _one_backend(db, tmp_path)
    op_id = host_op(a)
    store = CountingStore(tmp_path / "models", fail_after_save=True)
    payload = parse_payload(result_payload(op_id, "hs_1", tmp_path / "model.pt", config))
    outcome = await _ingest(db, a, store).ingest(payload)
    assert isinstance(outcome.model, ModelRef)
    assert outcome.model.version == 1
    assert a.get(op_id).status is OperationStatus.COMPLETED
    assert [v["version"] for v in store.list_versions("trend", "EURUSD_1h")] == [1]
    claim = SqlResultClaimRepository(db, lease_s=60).claim(op_id, "bk_b", clock.now())
    assert claim.stored == StoredVersion("trend", "EURUSD_1h", 1)  # recorded, not released


class BlockingStore(LocalModelStore):
    """The real store, whose ``save`` waits until the test lets it go (``saving`` is set meanwhile)."""

    def __init__(self, root: Path) -> None:
        super().__init__(LocalModelStore.at(root).storage)
        self.saving, self.go = threading.Event(), threading.Event()

    def save(self, artifact: ModelArtifact) -> ModelRef:
        self.saving.set()
        assert self.go.wait(30), "the test never let the save go"
        return super().save(artifact)


@pytest.mark.anyio
async def test_an_ingest_dropped_while_storing_still_stores_once_and_completes_the_operation(
    db: Engine, tmp_path: Path
) -> None:
    """The request delivering a result is dropped (a shutdown, a client gone) while its model is being
    stored: the store and the completion run to their end, and the host's retry finds them done."""
    _, a, config = _one_backend(db, tmp_path)
    op_id = host_op(a)
    store = BlockingStore(tmp_path / "models")
    payload = parse_payload(result_payload(op_id, "hs_1", tmp_path / "model.pt", config))
    ingest = _ingest(db, a, store)
    dropped = asyncio.create_task(ingest.ingest(payload))
    assert await asyncio.to_thread(store.saving.wait, 30)
    dropped.cancel()
    await asyncio.sleep(0.05)  # the cancel reaches the ingest while its store waits
    store.go.set()
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert a.get(op_id).status is OperationStatus.COMPLETED  # the store it began ran to its end
    again = await _ingest(db, a, store).ingest(payload)  # the host's retry
    assert again.duplicate
    assert [v["version"] for v in store.list_versions("trend", "EURUSD_1h")] == [1]


def ray_upload(db: Engine, tmp_path: Path, ops: OperationsService) -> tuple[str, Path, ResultIngest]:
    """A ray-mode operation running as its first job, which uploaded ``tmp_path/model.pt`` to
    ``tmp_path/ray-uploads``; the ingest (over ``ops``) that takes its result."""
    op, _ = ops.create(op_type="training", request=REQUEST, execution_mode="ray", mode_reason="t")
    ops.update(
        op.id,
        lambda cur: transition(cur, OperationStatus.RUNNING, ops.now()).with_changes(host_session_id=op.id),
    )
    uploads = tmp_path / "ray-uploads"
    uploads.mkdir(exist_ok=True)
    upload = uploads / f"{op.id}.model"
    upload.write_bytes((tmp_path / "model.pt").read_bytes())
    limits = IngestLimits(claim_wait_s=1, claim_poll_s=0.01)
    claims = SqlResultClaimRepository(db, lease_s=60)
    store = LocalModelStore.at(tmp_path / "models")
    ingest = ResultIngest(
        ops, store, CheckpointValidator(), FakeHostClient(), claims=claims, limits=limits, uploads_dir=uploads
    )
    return op.id, upload, ingest


@pytest.mark.anyio
async def test_a_ray_jobs_upload_outlives_a_failed_store_and_goes_once_its_version_is_stored(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ray job PUTs its model, then posts its result: a store that fails keeps the upload for the
    job's retry (it used to be moved into the ingest's temp folder and deleted with it), and the upload
    is deleted once the operation is completed with the version stored from it."""
    _, a, config = _one_backend(db, tmp_path)
    op_id, upload, ingest = ray_upload(db, tmp_path, a)
    payload = parse_payload(result_payload(op_id, op_id, upload, config, external_url=UPLOADED_MODEL_URL))
    fsync_all = model_storage.fsync_all
    failures = [OSError(28, "No space left on device")]

    def fsync_failing_once(paths: list[Path]) -> None:  # runs after the slot's file is moved in
        if failures:
            raise failures.pop()
        fsync_all(paths)

    monkeypatch.setattr(model_storage, "fsync_all", fsync_failing_once)
    with pytest.raises(StorageError):
        await ingest.ingest(payload)
    assert upload.read_bytes() == (tmp_path / "model.pt").read_bytes()  # kept for the retry
    assert a.get(op_id).status is OperationStatus.RUNNING
    outcome = await ingest.ingest(payload)  # the job's retry
    assert isinstance(outcome.model, ModelRef)
    assert outcome.model.version == 1
    assert a.get(op_id).status is OperationStatus.COMPLETED
    assert not upload.exists()
    assert list(upload.parent.iterdir()) == []  # no ingest folder left behind either
    stored = Path(outcome.model.path)
    assert [p.read_bytes() for p in stored.glob("model.*")] == [(tmp_path / "model.pt").read_bytes()]


@pytest.mark.anyio
async def test_a_refused_ray_result_keeps_the_upload_until_the_operation_fails_then_it_goes(
    db: Engine, tmp_path: Path
) -> None:
    _, a, config = _one_backend(db, tmp_path)
    op_id, upload, ingest = ray_upload(db, tmp_path, a)
    wrong = {**config, "model": {**config["model"], "input_dim": 99}}  # weights that do not fit it
    payload = parse_payload(result_payload(op_id, op_id, upload, wrong, external_url=UPLOADED_MODEL_URL))
    with pytest.raises(ResultRejectedError):
        await ingest.ingest(payload)
    assert upload.exists()
    a.fail(op_id, OperationError("training_error", "the job gave up"))  # what the job posts next
    assert not upload.exists()
    assert list(upload.parent.iterdir()) == []


def test_a_finished_operation_retried_through_another_backend_is_seen_running_here(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished operation is answered from memory for a moment only: a retry through another backend
    shows here once that moment is over, and a change made here meanwhile is judged on the stored state
    (it used to see the cached end for good, and every change failed as 'kept changing')."""
    monkeypatch.setattr(operations_module, "FINISHED_FRESH_S", 0.05)
    clock = FixedClock()
    a, b = backend(db, clock, "bk_a"), backend(db, clock, "bk_b")
    op, _ = a.create(op_type="training", request=REQUEST, execution_mode="local", mode_reason="t")
    a.mark_cancelled(op.id)
    assert b.get(op.id).status is OperationStatus.CANCELLED  # cached by b
    a.retry(op.id)
    assert b.mark_cancelled(op.id).status is OperationStatus.CANCELLED  # its cache was stale: re-read
    a.retry(op.id)
    time.sleep(0.1)
    assert b.get(op.id).status is OperationStatus.PENDING


def test_a_sweep_keeps_the_upload_of_an_operation_retried_through_another_backend(
    db: Engine, tmp_path: Path
) -> None:
    _, a, _ = _one_backend(db, tmp_path)
    op_id, upload, _ = ray_upload(db, tmp_path, a)
    a.fail(op_id, OperationError("ray_job_lost", "the job was lost"))
    b = backend(db, FixedClock(), "bk_b")
    store = LocalModelStore.at(tmp_path / "models")
    claims = SqlResultClaimRepository(db, lease_s=60)
    sweeper = ResultIngest(b, store, CheckpointValidator(), FakeHostClient(), claims=claims,
                           limits=IngestLimits(), uploads_dir=upload.parent)  # fmt: skip
    assert b.get(op_id).is_terminal  # b has seen it failed (and keeps that a moment)
    a.retry(op_id)
    upload.write_bytes(b"the new job's model")  # the retry's job uploads again
    assert sweeper.cleanup_uploads(600) == []
    assert upload.exists()


@pytest.mark.anyio
async def test_a_result_whose_upload_went_with_its_operations_end_meanwhile_is_a_conflict_not_a_refusal(
    db: Engine, tmp_path: Path
) -> None:
    """Backend b still holds the operation as running when a's cancel ended it and deleted its upload:
    b answers from the operation as stored (409: it takes no result), not 'the upload is missing' (422)."""
    clock, a, config = _one_backend(db, tmp_path)
    op_id, upload, _ = ray_upload(db, tmp_path, a)
    payload = parse_payload(result_payload(op_id, op_id, upload, config, external_url=UPLOADED_MODEL_URL))
    b = backend(db, clock, "bk_b")
    b.track(a.get(op_id))  # b follows it live: running
    store = LocalModelStore.at(tmp_path / "models")
    claims = SqlResultClaimRepository(db, lease_s=60)
    ingest_b = ResultIngest(b, store, CheckpointValidator(), FakeHostClient(), claims=claims,
                            limits=IngestLimits(), uploads_dir=upload.parent)  # fmt: skip
    a.mark_cancelled(op_id)
    assert not upload.exists()  # gone with the operation's end
    with pytest.raises(ResultConflictError, match="cancelled"):
        await ingest_b.ingest(payload)


def test_the_cleanup_takes_uploads_of_ended_or_unknown_operations_and_old_crash_leftovers(
    db: Engine, tmp_path: Path
) -> None:
    """What the end of its operation could not delete: it ended in another backend (or this one crashed
    between the end and the delete), or it is gone; an ingest folder or part file a crash left, once old
    (a young one may be in use)."""
    clock, a, _ = _one_backend(db, tmp_path)
    running, upload, ingest = ray_upload(db, tmp_path, a)
    uploads = upload.parent
    ended, _ = a.create(op_type="training", request=REQUEST, execution_mode="ray", mode_reason="t")
    backend(db, clock, "bk_b").mark_cancelled(ended.id)  # another backend ended it: no observer here
    leftovers = {
        "ended": uploads / f"{ended.id}.model",
        "unknown": uploads / "op_gone.model",
        "old_part": uploads / f".{running}.model.0123.part",
        "old_ingest": uploads / "modelyard-ingest-old",
    }
    for path in leftovers.values():
        path.mkdir() if path.name.startswith("modelyard-ingest") else path.write_bytes(b"x")
    young = uploads / "modelyard-ingest-young"
    young.mkdir()
    hour_ago = time.time() - 3600
    for name in ("old_part", "old_ingest"):
        os.utime(leftovers[name], (hour_ago, hour_ago))
    removed = ingest.cleanup_uploads(600)
    assert sorted(removed) == sorted(str(p) for p in leftovers.values())
    assert sorted(uploads.iterdir()) == sorted([upload, young])  # the running one's upload, in use
    assert ingest.cleanup_uploads(0) == [str(young)]  # at a start with no other backend alive


def test_a_signed_message_seen_by_one_backend_is_refused_by_every_other(db: Engine) -> None:
    now = [1_000_000.0]
    first, second = (SqlReplayGuard(db, 300, clock=lambda: now[0], purge_every_s=0) for _ in range(2))
    first.remember("msg_1", int(now[0]))
    with pytest.raises(ReplayError) as refused:
        second.remember("msg_1", int(now[0]))  # the same message replayed to another replica
    assert refused.value.code == "replayed"
    second.remember("msg_2", int(now[0]))
    with pytest.raises(ReplayError):
        first.remember("msg_2", int(now[0]))
    now[0] += 301  # past the tolerance: the old signature is stale, the id is forgotten
    second.remember("msg_1", int(now[0]))
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM signed_messages")).scalar_one() == 1
