"""ResultIngest: a host's result payload → a checked model version → a completed operation, exactly once.

The caller has already verified the signature over the raw bytes (the callback route) or fetched them
itself from the host (a pull). Here: parse, find the operation, materialise the model into a temp file
(inline: bounded gzip+base64 decode; external: a signed streamed download), check its sha256, validate
the weights, store them, complete the operation. One lock per operation serialises callback and pull;
a result already stored (same session, or a version whose metadata names the operation) is answered
as a duplicate, so the same result twice gives one model version. A rejection stores nothing and
leaves the operation as it was.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backend.domain.operations import ACTIVE_STATUSES, Operation, OperationStatus
from backend.domain.ports import HostClient, ModelValidator, ResultSink
from backend.errors import HostError, PayloadTooLargeError, ResultConflictError, ResultRejectedError
from backend.services.operations import OperationsService
from shared.contracts.handoff import HandoffError, ModelDigest, decode_inline_model
from shared.contracts.host import ExternalModel, InlineModel, ResultPayload
from shared.trainkit.executor.types import ModelArtifact, ModelRef

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class IngestOutcome:
    operation_id: str
    model: ModelRef | dict[str, Any]
    duplicate: bool


@dataclass(frozen=True)
class IngestLimits:
    inline_model_max_bytes: int = 32 << 20
    max_model_bytes: int = 4 << 30


def parse_payload(body: bytes) -> ResultPayload:
    try:
        return ResultPayload.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ResultRejectedError(
            f"the result payload is not valid: {field}: {first['msg']}", field=field
        ) from exc


class ResultIngest:
    def __init__(
        self,
        operations: OperationsService,
        sink: ResultSink,
        validator: ModelValidator,
        hosts: HostClient,
        *,
        limits: IngestLimits,
        temp_dir: Path | None = None,
    ) -> None:
        self._ops = operations
        self._sink = sink
        self._validator = validator
        self._hosts = hosts
        self._limits = limits
        self._temp_dir = temp_dir
        self._locks: dict[str, asyncio.Lock] = {}

    async def ingest(self, payload: ResultPayload) -> IngestOutcome:
        op_id = payload.operation_id
        async with self._locks.setdefault(op_id, asyncio.Lock()):
            op = await asyncio.to_thread(self._ops.get, op_id)
            done = self._already_done(op, payload)
            if done is not None:
                await self.acknowledge(op.host_url, payload.session_id)
                return done
            stored = await asyncio.to_thread(
                self._sink.find_by_operation, payload.artifact.strategy, payload.artifact.name, op_id
            )
            if stored is None:
                with self._workspace() as folder:
                    model_file = await self._materialise(payload, op, folder)
                    await asyncio.to_thread(self._validator.validate, model_file, payload.artifact.config)
                    stored = await asyncio.to_thread(self._store, payload, op, model_file)
            else:
                logger.info("operation %s: its model was stored before (v%d)", op_id, stored.version)
            await asyncio.to_thread(self._complete, payload, stored)
        logger.info("operation %s completed from host session %s: %s", op_id, payload.session_id, stored)
        await self.acknowledge(op.host_url, payload.session_id)
        return IngestOutcome(op_id, stored, duplicate=False)

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
        if op.status is OperationStatus.COMPLETED and same_session and op.execution_mode == "host":
            stored_sha = (op.result or {}).get("host_model_sha256")
            if stored_sha not in (None, payload.model.sha256):
                raise ResultConflictError(
                    f"operation {op.id} already completed with another model (sha256 {stored_sha}); "
                    "this result differs from the one stored",
                    operation_id=op.id,
                )
            logger.info("operation %s: duplicate result of session %s ignored", op.id, payload.session_id)
            return IngestOutcome(op.id, dict((op.result or {}).get("model") or {}), duplicate=True)
        if op.status not in ACTIVE_STATUSES or op.execution_mode != "host":
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
        """The model's raw bytes in ``folder/model.pt``, their size and sha256 checked."""
        target = folder / "model.pt"
        model = payload.model
        if isinstance(model, InlineModel):
            await asyncio.to_thread(self._decode_inline, model, target)
            return target
        await self._download(model, op, target)
        await asyncio.to_thread(_check_file, target, model)
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

    async def _download(self, model: ExternalModel, op: Operation, target: Path) -> None:
        limit = self._limits.max_model_bytes
        if model.size > limit:
            raise PayloadTooLargeError(
                f"model of {model.size} bytes exceeds {limit} bytes (MODELYARD_MAX_MODEL_BYTES)",
                limit=limit,
                size=model.size,
            )
        if not op.host_url:
            raise ResultConflictError(f"operation {op.id} has no host to fetch its model from")
        try:
            await self._hosts.download_model(op.host_url, model.url, target, max_bytes=model.size)
        except HostError as exc:
            if exc.status_code == 503:
                raise  # retryable: the host's callback retries, or the next pull does
            raise ResultRejectedError(f"the model could not be fetched: {exc.message}") from exc

    def _store(self, payload: ResultPayload, op: Operation, model_file: Path) -> ModelRef:
        artifact = payload.artifact
        metadata = {
            **artifact.metadata,
            "operation_id": op.id,
            "host_url": op.host_url,
            "host_session_id": payload.session_id,
            "host_model_sha256": payload.model.sha256,
            "trained_on": "host",
        }
        return self._sink.save(
            ModelArtifact(
                strategy=artifact.strategy,
                name=artifact.name,
                model_bytes=model_file.read_bytes(),
                config=artifact.config,
                metrics=artifact.metrics,
                features=artifact.features,
                metadata=metadata,
            )
        )

    def _complete(self, payload: ResultPayload, stored: ModelRef) -> None:
        result = {
            **payload.result,
            "model": stored.as_dict(),
            "host_session_id": payload.session_id,
            "host_model_sha256": payload.model.sha256,
        }
        device = payload.result.get("device")
        self._ops.complete(payload.operation_id, result, device=device if isinstance(device, str) else None)


def _check_file(path: Path, model: ExternalModel) -> None:
    digest = ModelDigest(sha256=model.sha256, size=model.size)
    try:
        with path.open("rb") as source:
            for block in iter(lambda: source.read(_READ_CHUNK), b""):
                digest.update(block)
        digest.verify()
    except HandoffError as exc:
        raise ResultRejectedError(f"the streamed model was refused: {exc}") from exc
