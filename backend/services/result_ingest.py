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
recorded under the claim right after the operation is completed. Checking, storing and completing run
in one worker-thread call (an inline model's decoding too: a hand-off waits for one thread hop, not
seven), which runs to its end even if the request is dropped meanwhile (a shutdown): a version stored
is never left without its operation completed. A Ray job's model, uploaded before its result, is linked
into a temp folder beside it, not moved, and deleted once its operation ends (an ``on_terminal``
observer; ``cleanup_uploads`` catches what ended elsewhere): an ingest that fails or is dropped before
that leaves it for the job's retry.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
import tempfile
import time
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
from shared.aio import to_thread_to_its_end
from shared.contracts.bundle import BUNDLE_FILE, BundleError, unpack_files
from shared.contracts.errors import first_error
from shared.contracts.handoff import HandoffError, ModelDigest, decode_inline_model
from shared.contracts.host import ExternalModel, InlineModel, ResultArtifact, ResultPayload
from shared.trainkit.executor.types import ModelArtifact, ModelRef, StagedModel

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20
INGEST_FOLDER_PREFIX = "modelyard-ingest-"
#: A Ray job's streamed model: ``<uploads dir>/<operation id>.model`` (``backend.api.ray_jobs``).
UPLOAD_SUFFIX = ".model"
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
        #: Ray mode: where a job's streamed model waits (``backend.api.ray_jobs``) until its operation ends.
        self._uploads_dir = uploads_dir
        self._locks: dict[str, asyncio.Lock] = {}
        if uploads_dir is not None:
            operations.on_terminal(self._drop_upload)

    async def ingest(self, payload: ResultPayload) -> IngestOutcome:
        op_id = payload.operation_id
        async with self._locks.setdefault(op_id, asyncio.Lock()):
            op = await asyncio.to_thread(self._ops.get, op_id)
            done = self._already_done(op, payload)
            if done is not None:
                await self.acknowledge(_host_of(op), payload.session_id)
                return done
            try:
                stored = await self._store_and_complete(payload, op)
            except IllegalTransitionError:
                # Another backend completed (or ended) it meanwhile: judged as the database holds it.
                current = await asyncio.to_thread(self._ops.stored, op_id)
                done = self._already_done(current, payload) if current is not None else None
                if done is None:
                    raise
                await self.acknowledge(_host_of(op), payload.session_id)
                return done
        logger.info("operation %s completed from host session %s: %s", op_id, payload.session_id, stored)
        await self.acknowledge(_host_of(op), payload.session_id)
        return IngestOutcome(op_id, stored, duplicate=False)

    async def _store_and_complete(self, payload: ResultPayload, op: Operation) -> ModelRef | None:
        """The payload's model stored (or the version an earlier ingest stored found), then the operation
        completed with it. An inline model has nothing to fetch: it is decoded, checked, stored and the
        operation completed in one worker-thread call, awaited to its end even if this request is dropped
        meanwhile. An external one is fetched first, unless an earlier ingest stored it."""
        if payload.artifact is None:
            await asyncio.to_thread(self._complete_and_record, payload, None, False)
            return None
        with self._workspace(op) as folder:
            if isinstance(payload.model, InlineModel):
                outcome = await to_thread_to_its_end(self._check_store_complete, payload, op, folder, None)
            else:
                earlier = await asyncio.to_thread(self._complete_with_earlier, payload, op.id)
                if earlier is not None:
                    return earlier
                fetched = await self._materialise(payload, op, folder)
                outcome = await to_thread_to_its_end(self._check_store_complete, payload, op, folder, fetched)
            deadline = asyncio.get_running_loop().time() + self._limits.claim_wait_s
            while isinstance(outcome, _Held):
                if asyncio.get_running_loop().time() >= deadline:
                    raise ResultBeingStoredError(
                        f"backend {outcome.holder} is storing the model of operation {op.id}; retry shortly",
                        operation_id=op.id,
                        holder=outcome.holder,
                    )
                await asyncio.sleep(self._limits.claim_poll_s)
                outcome = await to_thread_to_its_end(self._store_complete, payload, op, outcome.checked)
            return outcome

    def _check_store_complete(
        self, payload: ResultPayload, op: Operation, folder: Path, fetched: Path | None
    ) -> ModelRef | _Held:
        """The model slot's file checked (an inline model decoded into ``folder`` first, unless an earlier
        ingest stored it), then stored and the operation completed (``_store_complete``)."""
        if fetched is None:
            earlier = self._complete_with_earlier(payload, op.id)
            if earlier is not None:
                return earlier
            assert isinstance(payload.model, InlineModel)
            fetched = _slot_file(payload, folder)
            self._decode_inline(payload.model, fetched)
        return self._store_complete(payload, op, self._checked(payload, fetched, folder))

    def _checked(self, payload: ResultPayload, model_file: Path, folder: Path) -> _Checked:
        """Weights validated against the artifact's config; a command's artefacts unpacked and checked one
        by one against the artifact's list (files of any kind: no torch weights to validate)."""
        artifact = payload.artifact
        assert artifact is not None
        assert payload.model is not None
        if artifact.bundle is None:
            self._validator.validate(model_file, artifact.config)
            # Checked against the payload's sha256 and size: the store takes the file as it is.
            return _Checked(StagedModel(model_file, payload.model.sha256, payload.model.size), {})
        return _Checked(None, self._unpack(artifact, model_file, folder / "files"))

    def _store_complete(self, payload: ResultPayload, op: Operation, checked: _Checked) -> ModelRef | _Held:
        """Publish the checked model only if this ingest wins the database claim, else take the version
        another ingest stored under it; then complete the operation with it. ``_Held`` while another
        backend holds the claim without a version yet (the caller waits and calls again)."""
        me = self._ops.instance_id
        claim = self._claims.claim(op.id, me, self._ops.now())
        if not claim.won:
            if claim.stored is None:
                return _Held(claim.holder, checked)
            logger.info("operation %s: its model was stored by backend %s", op.id, claim.holder)
            stored = self._ref_of(claim.stored, op.id)
        else:
            try:
                stored = self._publish(payload, op, checked.model, checked.files, fresh=claim.fresh)
            except Exception:
                published = self._release_unless_published(payload, op.id, me)
                if published is None:
                    raise
                logger.exception(
                    "operation %s: storing its model failed after v%d was published; keeping it",
                    op.id,
                    published.version,
                )
                stored = published
        self._complete_and_record(payload, stored, claim.won)
        return stored

    def _complete_with_earlier(self, payload: ResultPayload, op_id: str) -> ModelRef | None:
        """The operation completed with the version an earlier ingest stored, if one did (else None)."""
        stored = self._stored_before(payload, op_id)
        if stored is not None:
            logger.info("operation %s: its model was stored before (v%d)", op_id, stored.version)
            self._complete_and_record(payload, stored, False)
        return stored

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
    def _workspace(self, op: Operation) -> Iterator[Path]:
        """A temp folder for the model slot; a Ray job's beside its upload, which is linked into it."""
        upload = self.upload_path(op)
        where = self._temp_dir
        if upload is not None:
            where = upload.parent
            where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=INGEST_FOLDER_PREFIX, dir=where) as folder:
            yield Path(folder)

    def upload_path(self, op: Operation) -> Path | None:
        """Where a Ray job streams its model before its result (``backend.api.ray_jobs``) and it waits
        until the operation ends; None in other modes (or with no uploads folder)."""
        if op.execution_mode != "ray" or self._uploads_dir is None:
            return None
        return self._uploads_dir / f"{op.id}{UPLOAD_SUFFIX}"

    def _drop_upload(self, op: Operation) -> None:
        """An ended Ray operation's upload deleted (an ``on_terminal`` observer): completed, its version
        holds the bytes; failed or cancelled, a retry's job uploads again. Kept until then: an ingest
        that fails or is dropped leaves it for the job's retry."""
        upload = self.upload_path(op)
        if upload is not None:
            upload.unlink(missing_ok=True)

    def cleanup_uploads(self, max_age_s: float) -> list[str]:
        """What ``_drop_upload`` could not delete: the uploads of operations that ended elsewhere (another
        backend, a crash between the end and the delete) or are gone, and the part files and ingest
        folders older than ``max_age_s`` that a crash left (a younger one may still be in use)."""
        if self._uploads_dir is None or not self._uploads_dir.is_dir():
            return []
        removed = []
        cutoff = time.time() - max_age_s
        for entry in self._uploads_dir.iterdir():
            if entry.name.startswith(INGEST_FOLDER_PREFIX) or entry.name.endswith(".part"):
                stale = _modified(entry) < cutoff
            elif entry.suffix == UPLOAD_SUFFIX:
                stale = self._ended(entry.name.removesuffix(UPLOAD_SUFFIX))
            else:
                continue
            if not stale:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(str(entry))
        return removed

    def _ended(self, op_id: str) -> bool:
        """Read from the database, not a cache: a finished operation retried through another backend
        runs again, and its new job's upload must stay."""
        op = self._ops.stored(op_id)
        return op is None or op.is_terminal

    async def _materialise(self, payload: ResultPayload, op: Operation, folder: Path) -> Path:
        """An external model slot's raw bytes fetched into ``folder`` (``_slot_file``), size and sha256
        checked."""
        model = payload.model
        assert isinstance(model, ExternalModel)
        target = _slot_file(payload, folder)
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
        a Ray job's upload was linked into place: that file is still to be hashed)."""
        limit = self._limits.max_model_bytes
        if model.size > limit:
            raise PayloadTooLargeError(
                f"model of {model.size} bytes exceeds {limit} bytes (MODELYARD_MAX_MODEL_BYTES)",
                limit=limit,
                size=model.size,
            )
        upload = self.upload_path(op)
        if upload is not None:
            # Linked, not moved: the store moves the slot's file into the version, and a store that
            # fails, or an ingest dropped before it, must leave the upload for the job's retry. (Awaited
            # to its end: a copy must not outlive the temp folder it writes into.)
            try:
                await to_thread_to_its_end(_link_or_copy, upload, target)
            except FileNotFoundError:
                current = await asyncio.to_thread(self._ops.stored, op.id)
                if current is not None and current.status not in ACTIVE_STATUSES:
                    # Deleted as its operation ended meanwhile (completed through another backend,
                    # cancelled): ``ingest`` answers from the operation as it is now.
                    raise IllegalTransitionError(
                        f"operation {op.id} ended while its result was taken"
                    ) from None
                raise ResultRejectedError(
                    f"the result references an uploaded model, but operation {op.id} has none"
                ) from None
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


@dataclass(frozen=True)
class _Checked:
    """A model slot checked and ready to store: validated weights, or a command's unpacked files."""

    model: StagedModel | None
    files: dict[str, Path]


@dataclass(frozen=True)
class _Held:
    """Another backend holds the operation's result claim and has recorded no version yet."""

    holder: str | None
    checked: _Checked


def _slot_file(payload: ResultPayload, folder: Path) -> Path:
    """Where the model slot's raw bytes go: ``model.weights`` (a ``model.safetensors``, or an older
    host's ``model.pt``: the validator and the store tell them apart by content) or ``artifacts.tar``."""
    assert payload.artifact is not None
    return folder / (BUNDLE_FILE if payload.artifact.bundle is not None else "model.weights")


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


#: Why a hard link can fail where a copy works: another file system, none allowed, too many links.
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOSYS})


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        target.hardlink_to(source)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        shutil.copyfile(source, target)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # gone meanwhile
        return float("inf")


def _check_file(path: Path, model: ExternalModel) -> None:
    digest = ModelDigest(sha256=model.sha256, size=model.size)
    try:
        with path.open("rb") as source:
            for block in iter(lambda: source.read(_READ_CHUNK), b""):
                digest.update(block)
        digest.verify()
    except HandoffError as exc:
        raise ResultRejectedError(f"the streamed model was refused: {exc}") from exc
