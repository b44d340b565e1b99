"""FileOperationLogStore: one append-only JSON-lines file per operation, bounded in lines."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

from backend.domain.ports import LogRecordLine

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class FileOperationLogStore:
    def __init__(self, root: Path, *, max_lines: int = 5000) -> None:
        self._root = root
        self._max_lines = max_lines
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def _path(self, op_id: str) -> Path:
        if not _SAFE_ID.match(op_id):
            raise ValueError(f"not an operation id: {op_id!r}")
        return self._root / f"{op_id}.jsonl"

    def _count(self, path: Path, op_id: str) -> int:
        if op_id not in self._counts:
            count = 0
            if path.exists():
                with path.open("rb") as existing:
                    count = sum(1 for _ in existing)
                _end_torn_line(path)
            self._counts[op_id] = count
        return self._counts[op_id]

    def append(self, op_id: str, line: LogRecordLine) -> None:
        path = self._path(op_id)
        with self._lock:
            count = self._count(path, op_id)
            if count > self._max_lines:
                return
            record = {
                "at": line.at.isoformat(),
                "level": line.level,
                "logger": line.logger,
                "message": line.message,
            }
            if count == self._max_lines:
                record = {**record, "level": "WARNING", "message": "log truncated: later lines were dropped"}
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
            self._counts[op_id] = count + 1

    def read(self, op_id: str, offset: int, limit: int) -> tuple[list[LogRecordLine], bool]:
        path = self._path(op_id)
        if not path.exists():
            return [], False
        lines: list[LogRecordLine] = []
        total = 0
        mtime = path.stat().st_mtime
        with path.open(encoding="utf-8", errors="replace") as source:
            for index, raw in enumerate(source):
                total = index + 1
                if index < offset or len(lines) >= limit:
                    continue
                lines.append(_parse_line(index, raw, mtime))
        return lines, total > self._max_lines


def _end_torn_line(path: Path) -> None:
    """A crash mid-append leaves a line without its newline: end it, so the next line stands alone."""
    with path.open("rb+") as existing:
        if existing.seek(0, 2) == 0:
            return
        existing.seek(-1, 2)
        if existing.read(1) != b"\n":
            existing.write(b"\n")


def _parse_line(index: int, raw: str, file_mtime: float) -> LogRecordLine:
    """One stored line; a torn or foreign one (a crash mid-append) is shown as such, never a 500."""
    try:
        record = json.loads(raw)
        return LogRecordLine(
            seq=index,
            at=datetime.fromisoformat(str(record["at"])),
            level=str(record["level"]),
            logger=str(record["logger"]),
            message=str(record["message"]),
        )
    except (ValueError, TypeError, KeyError):
        return LogRecordLine(
            seq=index,
            at=datetime.fromtimestamp(file_mtime, tz=UTC),
            level="WARNING",
            logger="modelyard.logs",
            message=f"unreadable log line {index} (cut short by a crash?): {raw.strip()[:200]}",
        )
