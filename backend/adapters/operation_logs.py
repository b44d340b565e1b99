"""FileOperationLogStore: one append-only JSON-lines file per operation, bounded in lines."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
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
            self._counts[op_id] = sum(1 for _ in path.open("rb")) if path.exists() else 0
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
        with path.open(encoding="utf-8") as source:
            for index, raw in enumerate(source):
                total = index + 1
                if index < offset or len(lines) >= limit:
                    continue
                record = json.loads(raw)
                lines.append(
                    LogRecordLine(
                        seq=index,
                        at=datetime.fromisoformat(record["at"]),
                        level=record["level"],
                        logger=record["logger"],
                        message=record["message"],
                    )
                )
        return lines, total > self._max_lines
