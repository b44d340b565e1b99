"""Sessions on disk: ``{work_dir}/sessions/{id}/session.json``, each write atomic and durable (temp file,
fsync, rename, fsync of the folder): a crash leaves the previous state or the new one, never half of one.
The fsyncs keep the promise that a state the backend was told about (a started session, an acknowledged
result) survives a crash of the machine; the writes a session makes while it runs go through
:class:`~host_service.adapters.session_writer.SessionWriter`, off the event loop."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from host_service.domain.sessions import Session
from shared.trainkit.storage.durable_files import replace_durably

logger = logging.getLogger(__name__)

SESSION_FILE = "session.json"


class DiskSessionStore:
    def __init__(self, work_dir: Path) -> None:
        self.root = Path(work_dir) / "sessions"
        self.root.mkdir(parents=True, exist_ok=True)

    def session_dir(self, session_id: str) -> Path:
        return self.root / session_id

    def data_dir(self, session_id: str) -> Path:
        return self.session_dir(session_id) / "data"

    def result_dir(self, session_id: str) -> Path:
        return self.session_dir(session_id) / "result"

    def scratch_dir(self, session_id: str) -> Path:
        return self.session_dir(session_id) / "scratch"

    def run_root(self, session_id: str) -> Path:
        return self.session_dir(session_id) / "runs"

    def save(self, session: Session) -> None:
        self.write_record(session.session_id, session.to_record())

    def write_record(self, session_id: str, record: dict[str, Any]) -> None:
        folder = self.session_dir(session_id)
        folder.mkdir(parents=True, exist_ok=True)
        # Compact: ``indent`` makes ``json`` fall back to its Python encoder, which holds the GIL the
        # event loop and the hand-off wait for (``jq . session.json`` shows it indented).
        text = json.dumps(record, sort_keys=True)
        replace_durably(folder / SESSION_FILE, text.encode())

    def load_all(self) -> list[Session]:
        """Every readable session; an unreadable session.json is logged and skipped, never fatal."""
        sessions = []
        for path in sorted(self.root.glob(f"*/{SESSION_FILE}")):
            try:
                sessions.append(Session.from_record(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                logger.error("skipping unreadable session file %s: %s", path, exc)
        return sessions

    def delete_files(self, session_id: str) -> None:
        folders = (self.result_dir, self.data_dir, self.scratch_dir, self.run_root)
        for folder in (where(session_id) for where in folders):
            shutil.rmtree(folder, ignore_errors=True)
