"""The model store the API reads, backed by trainkit's ModelStorage on a local folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.trainkit.storage import ModelStorage
from shared.trainkit.storage.names import version_dir_name


class LocalModelStore:
    """Adapts :class:`ModelStorage` (which also serves as the executor's ModelSink) to the ModelStore port."""

    def __init__(self, storage: ModelStorage) -> None:
        self.storage = storage

    @classmethod
    def at(cls, root: Path) -> LocalModelStore:
        root.mkdir(parents=True, exist_ok=True)
        return cls(ModelStorage(root))

    def list_models(self) -> list[dict[str, Any]]:
        return [m.as_dict() for m in self.storage.list_models()]

    def list_versions(self, strategy: str, name: str) -> list[dict[str, Any]]:
        versions = []
        for record in self.storage.list_versions(strategy, name):
            entry = record.as_dict()
            folder = Path(record.path)
            entry["files"] = (
                sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
            )
            versions.append(entry)
        return versions

    def archive(self, strategy: str, name: str, version: int) -> tuple[str, Iterator[bytes]]:
        chunks = self.storage.archive(strategy, name, version)
        return f"{strategy}-{version_dir_name(name, version)}.zip", chunks

    def delete(self, strategy: str, name: str, version: int) -> None:
        self.storage.delete(strategy, name, version)

    def cleanup_stale(self) -> list[str]:
        """At start no save is in progress, so every temp folder is a crash leftover."""
        return self.storage.cleanup_stale(older_than_s=0.0)
