"""The data folder: candle CSVs (:class:`CandleFiles`) and tables (any other CSV or Parquet file).

A file is candles when it is a valid ``SYMBOL_TIMEFRAME.csv``; every other ``.csv``/``.parquet`` at the
top of the folder is a table. Uploads stream to a hidden ``.part`` file beside their target (never
whole in memory), are checked there, then replace the target atomically: a refused or interrupted
upload leaves no file a listing or a training would pick up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Final

from backend.adapters.catalogs import CandleFiles
from backend.errors import PayloadTooLargeError
from shared.trainkit.errors import DataError
from shared.trainkit.provenance import file_sha256
from shared.trainkit.workloads.table_files import TABLE_SUFFIXES, TablePreview, check_table, preview_table

logger = logging.getLogger(__name__)

COPY_BLOCK: Final = 1 << 20


class DataFolder(CandleFiles):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        # path → ((mtime_ns, size), preview, sha256): a listing reads each unchanged file once
        self._described: dict[Path, tuple[tuple[int, int], TablePreview, str]] = {}

    def list_datasets(self) -> list[dict[str, Any]]:
        candles = [{**item, "kind": "candles"} for item in super().list_datasets()]
        known = {item["path"] for item in candles}
        tables = []
        for path in self._table_files():
            if path.name in known:
                continue
            try:
                preview, sha256 = self._describe(path)
            except (DataError, OSError) as exc:
                logger.info("data file %s is left out of the listing: %s", path.name, exc)
                continue
            tables.append(_table_item(path, preview, sha256))
        return candles + tables

    def store_table(self, name: str, source: BinaryIO, *, max_bytes: int) -> dict[str, Any]:
        """Stream ``source`` to ``name`` (checked as a table first); the answer is its listing entry."""
        target = self.root / _table_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.root / f".{target.stem}.{uuid.uuid4().hex}.part{target.suffix}"
        try:
            sha256 = _copy(source, temp, max_bytes)
            preview = check_table(temp, target.name)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        stat = target.stat()
        self._described[target] = ((stat.st_mtime_ns, stat.st_size), preview, sha256)
        return _table_item(target, preview, sha256)

    def preview(self, name: str) -> dict[str, Any]:
        """Columns (dtype, missing values), rows and first rows of any data file."""
        path = self.file_path(name)
        preview, _ = self._describe(path)
        relative = str(path.resolve().relative_to(self.root.resolve()))
        candles = {item["path"] for item in super().list_datasets()}
        return {
            "path": relative,
            "kind": "candles" if relative in candles else "table",
            "size_bytes": path.stat().st_size,
            **preview.as_dict(),
        }

    def _table_files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            p
            for p in self.root.iterdir()
            if p.suffix.lower() in TABLE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )

    def _describe(self, path: Path) -> tuple[TablePreview, str]:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._described.get(path)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        preview = preview_table(path, path.name)
        sha256 = file_sha256(path)
        self._described[path] = (key, preview, sha256)
        return preview, sha256


def _table_name(name: str) -> str:
    from backend.adapters.catalogs import _FILE_PART

    if not _FILE_PART.match(name) or "/" in name:
        raise DataError(
            f"file name {name[:100]!r} is not valid: use 1-128 letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (e.g. churn.csv)",
            field="name",
        )
    if Path(name).suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(
            f"file name {name!r} must end in .csv or .parquet so the table can be read",
            field="name",
        )
    return name


def _copy(source: BinaryIO, target: Path, max_bytes: int) -> str:
    digest = hashlib.sha256()
    written = 0
    with target.open("wb") as sink:
        for block in iter(lambda: source.read(COPY_BLOCK), b""):
            written += len(block)
            if written > max_bytes:
                raise PayloadTooLargeError(
                    f"the uploaded file exceeds {max_bytes} bytes (MODELYARD_MAX_UPLOAD_BYTES)",
                    limit=max_bytes,
                )
            digest.update(block)
            sink.write(block)
    return digest.hexdigest()


def _table_item(path: Path, preview: TablePreview, sha256: str) -> dict[str, Any]:
    return {
        "kind": "table",
        "format": preview.format,
        "rows": preview.rows,
        "columns": len(preview.columns),
        "path": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": sha256,
    }
