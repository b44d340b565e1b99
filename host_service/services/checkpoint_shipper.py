"""CheckpointShipper: each new training checkpoint of a running session goes to the backend.

The training writes its checkpoints atomically into its checkpoint folder (the last two kept): trainkit's
``epoch-NNNNNN.ckpt``, or a command's kept copies ``step-NNNNNNNNN-<file>``. Every ``poll_s`` the shipper
looks for a newer one than it last shipped and PUTs it to the session's ``checkpoint_url`` with its name
and label (epoch or step), signed, the body streamed from disk — the steps a Ray job's shipper shares
(``shared.contracts.checkpoint_shipping``). A failed upload is logged and tried again at the next look,
unless the backend refused it (4xx: the operation moved on, or the file is too large), which the next
checkpoint may fix. When the host is lost, the backend resumes the training elsewhere from the last
checkpoint that arrived.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from host_service.domain.ports import BackendClient
from host_service.domain.sessions import Session
from host_service.errors import CallbackError, CallbackRejectedError
from shared.contracts.checkpoint_shipping import CheckpointSettings, next_checkpoint
from shared.contracts.host import CheckpointRef

logger = logging.getLogger(__name__)


def resumed_checkpoint(session: Session) -> CheckpointRef | None:
    """The checkpoint the session's training resumes from (its name validated), if any."""
    ref = session.resume_checkpoint
    return CheckpointRef.model_validate(ref) if ref else None


def resume_files(session: Session) -> list[dict[str, Any]]:
    """The checkpoint to put in the training's checkpoint folder before it starts, as a dataset entry
    (downloaded, checked against its sha256, cached like data); none when the session starts afresh."""
    ref = resumed_checkpoint(session)
    if ref is None:
        return []
    return [{"filename": ref.file_name, "url": ref.url, "sha256": ref.sha256}]


class CheckpointShipper:
    def __init__(self, client: BackendClient, settings: CheckpointSettings) -> None:
        self._client = client
        self.settings = settings

    async def follow(self, session: Session, folder: Path) -> None:
        """Ship every new newest checkpoint in ``folder`` until cancelled (the session ended)."""
        if not session.checkpoint_url:
            return
        # The checkpoint a resumed training starts from is the backend's already: never sent back.
        resumed = resumed_checkpoint(session)
        shipped = resumed.file_name if resumed is not None else None
        while True:
            await asyncio.sleep(self.settings.poll_s)
            shipped = await self.ship_newest(session, folder, shipped)

    async def ship_newest(self, session: Session, folder: Path, shipped: str | None) -> str | None:
        """Ship the newest checkpoint if it is not ``shipped``; return the name now counted as shipped."""
        if session.checkpoint_url is None:
            return shipped
        with next_checkpoint(folder, shipped) as newest:
            if newest is None:
                return shipped
            query, size = await asyncio.to_thread(newest.describe, session.session_id)
            try:
                await self._client.upload(session.checkpoint_url, newest.source, size=size, query=query)
            except CallbackRejectedError as exc:
                logger.warning(
                    "checkpoint %s of session %s refused: %s", newest.name, session.session_id, exc
                )
                return newest.name
            except CallbackError as exc:
                logger.warning(
                    "checkpoint %s of session %s not shipped (the next look retries): %s",
                    newest.name,
                    session.session_id,
                    exc,
                )
                return shipped
        logger.info("checkpoint %s of session %s (%d bytes) shipped", newest.name, session.session_id, size)
        return newest.name
