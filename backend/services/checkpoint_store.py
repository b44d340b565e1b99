"""CheckpointStore: the newest training checkpoint a host shipped for each operation, kept on disk.

It lands where a local attempt of the operation writes its own (``<runs dir>/<operation id>/checkpoints/``,
as ``epoch-NNNNNN.ckpt`` or, for a command, ``step-NNNNNNNNN-<file>``), so a training that falls back to
local resumes from it as from one of its own; ``shipped.json`` beside it records the file, its label
(epoch or step), sha256, size, the session that sent it and when. The older files of the same kind go.
An upload streams to a temporary file and replaces the older checkpoint only once its size and sha256 are
those the signed request announced: a crash or a cut connection mid-upload leaves the previous one as it
was. The newest upload wins (a retry from scratch ships epoch 1 again, and that is the newest state).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from backend.domain.checkpoints import ShippedCheckpoint, StoredCheckpoint
from backend.errors import CheckpointRejectedError
from backend.services.streamed_files import receive_file
from shared.contracts.host import checkpoint_label
from shared.trainkit.storage.durable_files import replace_durably

logger = logging.getLogger(__name__)

SHIPPED_FILE = "shipped.json"


class CheckpointStore:
    def __init__(self, runs_dir: Path, *, max_bytes: int) -> None:
        self._runs_dir = Path(runs_dir)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def folder(self, op_id: str) -> Path:
        return self._runs_dir / op_id / "checkpoints"

    def latest(self, op_id: str) -> StoredCheckpoint | None:
        """The checkpoint last shipped for ``op_id``; None when none was (or its file is gone)."""
        record = self.folder(op_id) / SHIPPED_FILE
        try:
            fields = json.loads(record.read_text())
            stored = StoredCheckpoint(**{**fields, "path": self.folder(op_id) / fields["path"]})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning("unreadable %s, ignored: %s", record, exc)
            return None
        return stored if stored.path.is_file() else None

    async def receive(
        self, op_id: str, shipped: ShippedCheckpoint, chunks: AsyncIterator[bytes], now: datetime
    ) -> StoredCheckpoint:
        """Store the streamed checkpoint as ``op_id``'s newest, or raise leaving the older one in place
        (PayloadTooLargeError past ``max_bytes``, CheckpointRejectedError for a size or digest other
        than announced)."""
        folder = self.folder(op_id)
        name = shipped.name
        await receive_file(
            chunks,
            folder / name,
            sha256=shipped.sha256,
            size=shipped.size,
            limit=self.max_bytes,
            limit_setting="MODELYARD_CHECKPOINT_MAX_BYTES",
            rejected=CheckpointRejectedError,
        )
        stored = StoredCheckpoint(
            path=folder / name,
            epoch=shipped.epoch,
            sha256=shipped.sha256,
            size=shipped.size,
            session_id=shipped.session_id,
            received_at=now.isoformat(),
        )
        with self._lock:
            record = {**asdict(stored), "path": name}
            replace_durably(folder / SHIPPED_FILE, json.dumps(record, indent=1).encode())
            self._prune(folder, shipped)
        return stored

    def _prune(self, folder: Path, kept: ShippedCheckpoint) -> None:
        """Every other checkpoint of its kind goes: the newest shipped state is the one to resume from."""
        for path in folder.iterdir():
            label = checkpoint_label(path.name)
            if label is not None and label[0] == kept.kind and path.name != kept.name:
                try:
                    path.unlink()
                except OSError as exc:
                    logger.warning("old checkpoint %s not removed: %s", path, exc)
