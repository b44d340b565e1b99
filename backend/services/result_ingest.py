"""ResultIngest: a host's result payload → a checked model version → a completed operation, exactly once.

The caller has already verified the signature over the raw bytes (the callback route) or fetched them
itself from the host with the answer's signature checked (a pull). Here: parse, find the operation, materialise the model into a temp file
(inline: bounded gzip+base64 decode; external: a signed streamed download), check its sha256, validate
the weights, store them, complete the operation. A command's artefacts arrive as one tar in the same
slot: it is unpacked safely (listed regular files only, each sha256 checked, size-capped) and stored as
the version's files, with no weights to validate; a result without a model completes the operation
with none. The database decides who stores the model: after the model is materialised and checked in
a temp folder, a claim row keyed by the operation id is inserted, and only the ingest that won it
publishes the version folder; every other one (another backend's pull racing this one's callback, a
retried callback) waits for the winner and answers with its version, so the same result twice, in one
process or in N backends, gives one model version. (The lock per operation only spares this process a
second download.) A rejection stores nothing, releases the claim and leaves the operation as it was.
Looking for a version an earlier ingest stored reads every version's metadata of the model, so it is
done only when an earlier claim exists (``claimed``; a first, ``fresh`` claim has nothing to find): a
first ingest, the common case, costs no more as a model's versions add up. A store that fails after its
rename keeps the version and its claim rather than releasing it for a second version. The version is
recorded under the claim right after the operation is completed, in the same worker-thread call.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backend.domain.operations import ACTIVE_STATUSES, Operation, OperationStatus
from backend.domain.ports import HostClient, ModelValidator, ResultClaimRepository, ResultSink
from backend.domain.results import StoredVersion
from backend.errors import (
    HostError,
    IllegalTransitionError,
    PayloadTooLargeError,
    ResultBeingStoredError,
    ResultConflictError,
    ResultRejectedError,
)
from backend.services.operations import OperationsService
from shared.contracts.bundle import BUNDLE_FILE, BundleError, unpack_files
from shared.contracts.errors import first_error
from shared.contracts.handoff import HandoffError, ModelDigest, decode_inline_model
from shared.contracts.host import ExternalModel, InlineModel, ResultArtifact, ResultPayload
from shared.trainkit.executor.types import ModelArtifact, ModelRef, StagedModel

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20
#: Modes whose results arrive through the hand-off (a host callback or pull, a Ray job's post).
REMOTE_MODES = frozenset({"host", "ray"})


@dataclass(frozen=True)
class IngestOutcome:
    operation_id: str
    model: ModelRef | dict[str, Any] | None
    duplicate: bool


@dataclass(frozen=True)
class IngestLimits:
    inline_model_max_bytes: int = 32 << 20
    max_model_bytes: int = 4 << 30
    #: How long an ingest waits for another backend that holds the claim to record its version,
    #: before answering "being stored, retry" (503).
    claim_wait_s: float = 30.0
    claim_poll_s: float = 0.1


def parse_payload(body: bytes) -> ResultPayload:
    try:
        return ResultPayload.model_validate_json(body)
    except ValidationError as exc:
        where, message = first_error(exc)
        field = where or "body"
        raise ResultRejectedError(
            f"the result payload is not valid: {field}: {message}", field=field
        ) from exc


class ResultIngest:
    def __init__(
        self,
        operations: OperationsService,
        sink: ResultSink,
        validator: ModelValidator,
        hosts: HostClient,
        *,
        claims: ResultClaimRepository,
        limits: IngestLimits,
        temp_dir: Path | None = None,
        uploads_dir: Path | None = None,
    ) -> None:
        self._ops = operations
        self._claims = claims
        self._sink = sink
        self._validator = validator
        self._hosts = hosts
        self._limits = limits
        self._temp_dir = temp_dir
        #: Ray mode: where a job's streamed model waits (``backend.api.ray_jobs``) until its result comes.
        self._uploads_dir = uploads_dir
        self._locks: dict[str, asyncio.Lock] = {}

    async def ingest(self, payload: ResultPayload) -> IngestOutcome:
        op_id = payload.operation_id
        async with self._locks.setdefault(op_id, asyncio.Lock()):
            op = await asyncio.to_thread(self._ops.get, op_id)
            done = self._already_done(op, payload)
            if done is not None:
                await self.acknowledge(_host_of(op), payload.session_id)
                return done
            stored, won = await self._stored_model(payload, op) if payload.artifact else (None, False)
            try:
                await asyncio.to_thread(self._complete_and_record, payload, stored, won)
            except IllegalTransitionError:
                # Another backend completed it with the same stored version meanwhile.
                done = self._already_done(await asyncio.to_thread(self._ops.get, op_id), payload)
                if done is None:
                    raise
                await self.acknowledge(op.host_url, payload.session_id)
                return done
        logger.info("operation %s completed from host session %s: %s", op_id, payload.session_id, stored)
        await self.acknowledge(_host_of(op), payload.session_id)
        return IngestOutcome(op_id, stored, duplicate=False)

    async def _stored_model(self, payload: ResultPayload, op: Operation) -> tuple[ModelRef, bool]:
        """The version holding the payload's model: stored now, or found from an ingest that ran before;
        and whether this ingest won its claim (the version is recorded under it once the operation is
        completed)."""
        artifact = payload.artifact
        assert artifact is not None
        stored = await asyncio.to_thread(self._stored_before, payload, op.id)
        if stored is not None:
            logger.info("operation %s: its model was stored before (v%d)", op.id, stored.version)
            return stored, False
        with self._workspace() as folder:
            model_file = await self._materialise(payload, op, folder)
            if artifact.bundle is None:
                await asyncio.to_thread(self._validator.validate, model_file, artifact.config)
                # Checked against the payload's sha256 and size: the store takes the file as it is.
                assert payload.model is not None  # _materialise refused a payload without one
                staged = StagedModel(model_file, payload.model.sha256, payload.model.size)
                return await self._store_once(payload, op, staged, {})
            # A command's artefacts: files of any kind, checked one by one against the artifact's list
            # (there are no torch weights to validate).
            files = await asyncio.to_thread(self._unpack, artifact, model_file, folder / "files")
            return await self._store_once(payload, op, None, files)

    async def _store_once(
        self, payload: ResultPayload, op: Operation, model: StagedModel | None, files: dict[str, Path]
    ) -> tuple[ModelRef, bool]:
        """Publish the checked model from the temp folder only if this ingest wins the database claim
        (True); else the version another ingest stored under it (False)."""
        me = self._ops.instance_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._limits.claim_wait_s
        while True:
            claim = await asyncio.to_thread(self._claims.claim, op.id, me, self._ops.now())
            if claim.won:
                break
            if claim.stored is not None:
                logger.info("operation %s: its model was stored by backend %s", op.id, claim.holder)
                return await asyncio.to_thread(self._ref_of, claim.stored, op.id), False
            if loop.time() >= deadline:
                raise ResultBeingStoredError(
                    f"backend {claim.holder} is storing the model of operation {op.id}; retry shortly",
                    operation_id=op.id,
                    holder=claim.holder,
                )
            await asyncio.sleep(self._limits.claim_poll_s)
        try:
            stored = await asyncio.to_thread(self._publish, payload, op, model, files, fresh=claim.fresh)
        except Exception:
            published = await asyncio.to_thread(self._release_unless_published, payload, op.id, me)
            if published is None:
                raise
            logger.exception(
                "operation %s: storing its model failed after v%d was published; keeping it",
                op.id,
                published.version,
            )
            stored = published
        except BaseException:
            # Cancelled (a shutdown, a dropped request): the publish's thread may still have renamed a
            # version into place, so the claim goes only when none was; shielded, so it does run.
            await asyncio.shield(asyncio.to_thread(self._release_unless_published, payload, op.id, me))
            raise
        return stored, True

    def _stored_before(self, payload: ResultPayload, op_id: str) -> ModelRef | None:
        """The version an earlier ingest stored before it could complete the operation. Looked for only
        when an earlier claim was kept: finding it reads the metadata of every version of the model."""
        assert payload.artifact is not None
        if not self._claims.claimed(op_id):
            return None
        return self._sink.find_by_operation(payload.artifact.strategy, payload.artifact.name, op_id)

    def _publish(
        self,
        payload: ResultPayload,
        op: Operation,
        model: StagedModel | None,
        files: dict[str, Path],
        *,
        fresh: bool,
    ) -> ModelRef:
        """The version for the claim just won: one an ingest that crashed after its rename already
        stored (its metadata names the operation), else a new one. A ``fresh`` claim is the
        operation's first: nothing was stored under it to look for."""
        assert payload.artifact is not None
        artifact = payload.artifact
        found = None if fresh else self._sink.find_by_operation(artifact.strategy, artifact.name, op.id)
        return found or self._store(payload, op, model, files)

    def _release_unless_published(self, payload: ResultPayload, op_id: str, me: str) -> ModelRef | None:
        """After a failed publish: the version when it was stored all the same (the store failed after
        its rename), kept under the claim; else the claim released, for the next ingest to take. Were it
        released with a version stored, that ingest's fresh claim would store a second one."""
        assert payload.artifact is not None
        try:
            found = self._sink.find_by_operation(payload.artifact.strategy, payload.artifact.name, op_id)
        except Exception:  # the search failed: the claim must not stay held until our lease lapses
            logger.exception("operation %s: could not look for a version stored before", op_id)
            found = None
        if found is None:
            self._claims.release(op_id, me)
        return found

    def _ref_of(self, stored: StoredVersion, op_id: str) -> ModelRef:
        found = self._sink.find_by_operation(stored.strategy, stored.name, op_id)
        return found or ModelRef(stored.strategy, stored.name, stored.version, path="")

    async def acknowledge(self, host_url: str | None, session_id: str) -> bool:
        """Tell the host its result is stored (it deletes its copy). Best effort: a miss is retried by
        the session follower, and an unacknowledged result only costs the host disk space."""
        if not host_url:
            return False
        try:
            await self._hosts.acknowledge(host_url, session_id)
        except HostError as exc:
            logger.warning("could not acknowledge session %s on %s: %s", session_id, host_url, exc.message)
            return False
        return True

    def _already_done(self, op: Operation, payload: ResultPayload) -> IngestOutcome | None:
        same_session = op.host_session_id in (None, payload.session_id)
        if op.status is OperationStatus.COMPLETED and same_session and op.execution_mode in REMOTE_MODES:
            stored_sha = (op.result or {}).get("host_model_sha256")
            if stored_sha not in (None, _sha256_of(payload)):
                raise ResultConflictError(
                    f"operation {op.id} already completed with another model (sha256 {stored_sha}); "
                    "this result differs from the one stored",
                    operation_id=op.id,
                )
            logger.info("operation %s: duplicate result of session %s ignored", op.id, payload.session_id)
            model = (op.result or {}).get("model")
            return IngestOutcome(op.id, dict(model) if model else None, duplicate=True)
        if op.status not in ACTIVE_STATUSES or op.execution_mode not in REMOTE_MODES:
            raise ResultConflictError(
                f"operation {op.id} is {op.status.value} in {op.execution_mode} mode; it takes no host result",
                operation_id=op.id,
                status=op.status.value,
            )
        if not same_session:
            raise ResultConflictError(
                f"operation {op.id} runs as host session {op.host_session_id}, not {payload.session_id}; "
                "this result is from an earlier attempt",
                operation_id=op.id,
                session_id=payload.session_id,
            )
        return None

    @contextmanager
    def _workspace(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="modelyard-ingest-", dir=self._temp_dir) as folder:
            yield Path(folder)

    async def _materialise(self, payload: ResultPayload, op: Operation, folder: Path) -> Path:
        """The model slot's raw bytes in ``folder/model.weights`` (a ``model.safetensors``, or an older
        host's ``model.pt``: the validator and the store tell them apart by content) or
        ``artifacts.tar``, size and sha256 checked."""
        assert payload.artifact is not None
        assert payload.model is not None
        target = folder / (BUNDLE_FILE if payload.artifact.bundle is not None else "model.weights")
        model = payload.model
        if isinstance(model, InlineModel):
            await asyncio.to_thread(self._decode_inline, model, target)
            return target
        streamed_sha256 = await self._download(model, op, target)
        if streamed_sha256 is None:
            await asyncio.to_thread(_check_file, target, model)
        else:  # hashed while it streamed: reading 45 MB again cost the hand-off a tenth of a second
            _check_streamed(streamed_sha256, target.stat().st_size, model)
        return target

    def _decode_inline(self, model: InlineModel, target: Path) -> None:
        limit = self._limits.inline_model_max_bytes
        if model.size > limit:
            raise PayloadTooLargeError(
                f"inline model of {model.size} bytes exceeds {limit} bytes (MODELYARD_INLINE_MODEL_MAX_BYTES); "
                "the host should send it by reference",
                limit=limit,
                size=model.size,
            )
        try:
            data = decode_inline_model(model.model_dump(), max_size=limit)
        except HandoffError as exc:
            raise ResultRejectedError(f"the inline model was refused: {exc}") from exc
        target.write_bytes(data)

    async def _download(self, model: ExternalModel, op: Operation, target: Path) -> str | None:
        """Fetch the model into ``target``; the sha256 of the bytes when they came over HTTP (None when
        a Ray job's upload was moved into place: that file is still to be hashed)."""
        limit = self._limits.max_model_bytes
        if model.size > limit:
            raise PayloadTooLargeError(
                f"model of {model.size} bytes exceeds {limit} bytes (MODELYARD_MAX_MODEL_BYTES)",
                limit=limit,
                size=model.size,
            )
        if op.execution_mode == "ray" and self._uploads_dir is not None:
            staged = self._uploads_dir / f"{op.id}.model"
            if not staged.is_file():
                raise ResultRejectedError(
                    f"the result references an uploaded model, but operation {op.id} has none"
                )
            await asyncio.to_thread(shutil.move, staged, target)
            return None
        if not op.host_url:
            raise ResultConflictError(f"operation {op.id} has no host to fetch its model from")
        try:
            return await self._hosts.download_model(op.host_url, model.url, target, max_bytes=model.size)
        except HostError as exc:
            if exc.status_code == 503:
                raise  # retryable: the host's callback retries, or the next pull does
            raise ResultRejectedError(f"the model could not be fetched: {exc.message}") from exc

    def _unpack(self, artifact: ResultArtifact, bundle: Path, destination: Path) -> dict[str, Path]:
        listed = {name: entry.model_dump() for name, entry in artifact.files.items()}
        destination.mkdir()
        try:
            return unpack_files(bundle, listed, destination, max_bytes=self._limits.max_model_bytes)
        except BundleError as exc:
            raise ResultRejectedError(f"the artefact bundle was refused: {exc}") from exc

    def _store(
        self, payload: ResultPayload, op: Operation, model: StagedModel | None, files: dict[str, Path]
    ) -> ModelRef:
        artifact = payload.artifact
        assert artifact is not None
        metadata = {
            **artifact.metadata,
            "operation_id": op.id,
            "host_url": op.host_url,
            "host_session_id": payload.session_id,
            "host_model_sha256": _sha256_of(payload),
            "trained_on": op.execution_mode,
        }
        return self._sink.save(
            ModelArtifact(
                strategy=artifact.strategy,
                name=artifact.name,
                model_bytes=b"",
                staged_model=model,
                config=artifact.config,
                metrics=artifact.metrics,
                features=artifact.features,
                metadata=metadata,
                files=files,
            )
        )

    def _complete_and_record(self, payload: ResultPayload, stored: ModelRef | None, won: bool) -> None:
        """Complete the operation, then record the version under the claim this ingest won, whatever
        the completion did: the user waits for one database write, not two. An ingest of another
        backend waiting on the claim then finds the version, and the operation completed."""
        try:
            self._complete(payload, stored)
        finally:
            if won and stored is not None:
                version = StoredVersion(stored.strategy, stored.name, stored.version)
                self._claims.record(payload.operation_id, self._ops.instance_id, version)

    def _complete(self, payload: ResultPayload, stored: ModelRef | None) -> None:
        result = {
            **payload.result,
            "model": stored.as_dict() if stored is not None else None,
            "host_session_id": payload.session_id,
            "host_model_sha256": _sha256_of(payload),
        }
        device = payload.result.get("device")
        self._ops.complete(payload.operation_id, result, device=device if isinstance(device, str) else None)


def _host_of(op: Operation) -> str | None:
    """The host to acknowledge a result to (a Ray job keeps no copy to delete)."""
    return op.host_url if op.execution_mode == "host" else None


def _sha256_of(payload: ResultPayload) -> str | None:
    """The sha256 of the model slot's bytes (the weights file or an artefact tar); None for no model."""
    return payload.model.sha256 if payload.model is not None else None


def _check_streamed(sha256: str, size: int, model: ExternalModel) -> None:
    if size != model.size:
        raise ResultRejectedError(
            f"the streamed model was refused: it has {size} bytes, expected {model.size}"
        )
    if sha256 != model.sha256:
        raise ResultRejectedError(
            f"the streamed model was refused: its sha256 is {sha256}, expected {model.sha256}"
        )


def _check_file(path: Path, model: ExternalModel) -> None:
    digest = ModelDigest(sha256=model.sha256, size=model.size)
    try:
        with path.open("rb") as source:
            for block in iter(lambda: source.read(_READ_CHUNK), b""):
                digest.update(block)
        digest.verify()
    except HandoffError as exc:
        raise ResultRejectedError(f"the streamed model was refused: {exc}") from exc
