"""The result hand-off: the payload of a finished session, its delivery to the callback, the raw model.

Small models travel inline (gzip+base64, :mod:`shared.contracts.handoff`); above ``inline_limit_bytes``
the payload only references ``/training/result/{id}/model``, which streams the raw bytes. A command's
artefacts travel the same way as one tar (``artifacts.tar``); a run that kept no model sends none.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_service.adapters.result_files import (
    MANIFEST_FILE,
    model_path,
    read_result,
    result_complete,
)
from host_service.domain.ports import BackendClient, SessionStore
from host_service.domain.sessions import Session
from host_service.errors import CallbackError, ResultNotAvailableError
from shared.contracts.handoff import (
    build_payload,
    encode_model_inline,
    external_model,
    payload_bytes,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFile:
    path: Path
    sha256: str
    size: int


class ResultHandoff:
    def __init__(
        self,
        store: SessionStore,
        client: BackendClient,
        *,
        inline_limit_bytes: int,
        gzip_level: int,
        public_url: str | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._inline_limit = inline_limit_bytes
        self._gzip_level = gzip_level
        self._public_url = (public_url or "").rstrip("/")

    def model_url(self, session_id: str) -> str:
        return f"{self._public_url}/training/result/{session_id}/model"

    def payload(self, session: Session) -> bytes:
        """The signed-to-be JSON body of ``session``'s result (CPU-bound: call it off the event loop)."""
        result_dir = self._require(session)
        result, artifact = read_result(result_dir)
        path = model_path(result_dir)
        model: dict[str, Any] | None = None
        if path is None:
            pass  # the run kept no model: artifact and model both travel as null
        elif path.stat().st_size > self._inline_limit:
            # The manifest's sha256: the worker hashed the file as it wrote it (no second read here).
            stored = self.model_file(session)
            model = external_model(self.model_url(session.session_id), stored.sha256, stored.size)
        else:
            model = encode_model_inline(path, level=self._gzip_level)
        return payload_bytes(
            build_payload(
                operation_id=session.operation_id,
                session_id=session.session_id,
                result=result,
                artifact=artifact,
                model=model,
            )
        )

    def model_file(self, session: Session) -> ModelFile:
        """The file of the payload's ``model`` slot: ``model.safetensors``, or ``artifacts.tar`` for a bundle."""
        result_dir = self._require(session)
        path = model_path(result_dir)
        if path is None:
            raise ResultNotAvailableError(
                f"session {session.session_id} kept no model (its result has none to send)",
                session_id=session.session_id,
            )
        entry = json.loads((result_dir / MANIFEST_FILE).read_text())[path.name]
        return ModelFile(path=path, sha256=entry["sha256"], size=entry["size"])

    async def deliver(self, session: Session) -> bool:
        """POST the result to the session's callback; False (logged) when every attempt failed."""
        try:
            body = await asyncio.to_thread(self.payload, session)
            await self._client.deliver(session.callback_url, body)
        except (CallbackError, ResultNotAvailableError) as exc:
            logger.error(
                "result of session %s (operation %s) not delivered: %s; it stays on disk until acknowledged",
                session.session_id,
                session.operation_id,
                exc,
            )
            return False
        logger.info("result of session %s delivered to %s", session.session_id, session.callback_url)
        return True

    def _require(self, session: Session) -> Path:
        result_dir = self._store.result_dir(session.session_id)
        if not session.result_available or not result_complete(result_dir):
            reason = "was acknowledged and deleted" if session.result_acknowledged else "is not available"
            raise ResultNotAvailableError(
                f"the result of session {session.session_id} {reason} (status {session.status.value})",
                session_id=session.session_id,
                status=session.status.value,
            )
        return result_dir
