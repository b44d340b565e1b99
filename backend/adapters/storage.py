"""The model store the API reads, backed by trainkit's ModelStorage on a local folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend.errors import ModelIntegrityError
from shared.trainkit.errors import ModelNotFoundError, StorageError, TrainkitError
from shared.trainkit.executor.types import ModelArtifact, ModelRef
from shared.trainkit.storage import ModelStorage
from shared.trainkit.storage.names import version_dir_name
from shared.trainkit.storage.onnx_export import export_stored_model


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
        """The version's zip, once every file is checked against the sha256 recorded at save time."""
        try:
            self.storage.verify(strategy, name, version)
        except ModelNotFoundError:
            raise
        except StorageError as exc:
            raise ModelIntegrityError(
                f"{exc.message}; the stored files of {strategy}/{name} v{version} do not match the "
                "checksums recorded when it was saved, so it is not served",
                strategy=strategy,
                name=name,
                version=version,
                **exc.details,
            ) from exc
        chunks = self.storage.archive(strategy, name, version)
        return f"{strategy}-{version_dir_name(name, version)}.zip", chunks

    def delete(self, strategy: str, name: str, version: int) -> None:
        self.storage.delete(strategy, name, version)

    def onnx(self, strategy: str, name: str, version: int) -> tuple[str, bytes]:
        data = export_stored_model(self.storage, strategy, name, version)
        return f"{strategy}-{version_dir_name(name, version)}.onnx", data

    def save(self, artifact: ModelArtifact) -> ModelRef:
        """A new version (the ResultSink port, for models trained on a host)."""
        return self.storage.save(artifact)

    def find_by_operation(self, strategy: str, name: str, operation_id: str) -> ModelRef | None:
        """The version whose metadata names ``operation_id``: an ingest that finished before a crash."""
        try:
            versions = self.storage.list_versions(strategy, name)
        except TrainkitError:  # no such model yet, or names a store would refuse
            return None
        for record in versions:
            try:
                metadata = self.storage.load_json(strategy, name, record.version, "metadata")
            except TrainkitError:
                continue
            if metadata.get("operation_id") == operation_id:
                return ModelRef(strategy=strategy, name=name, version=record.version, path=record.path)
        return None

    def cleanup_stale(self, older_than_s: float = 0.0) -> list[str]:
        """Remove crash leftovers (temp folders, half-written files) older than ``older_than_s``."""
        return self.storage.cleanup_stale(older_than_s=older_than_s)
