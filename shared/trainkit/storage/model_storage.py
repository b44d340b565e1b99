"""ModelStorage: the versioned, crash-safe and race-safe model store on a local folder.

Layout: ``{root}/{strategy}/{name}_v{N}/`` holding ``model.safetensors`` (``model.pt`` for a version
stored before the switch, or received from an older host), ``config.json``, ``metrics.json``,
``features.json`` and ``metadata.json`` (the artifact's metadata plus ``version``, ``created_at`` and the
sha256 and size of every other file), and a relative symlink ``{name}_latest -> {name}_v{N}``.

Crash safety: a version is written into a hidden temp folder next to its final place, every file and
folder of it fsynced (all at once: one journal commit, not one per file), then renamed into place in one
step; delete renames to a hidden trash name first.
Hidden folders are never listed and :meth:`ModelStorage.cleanup_stale` sweeps them.
Race safety: see :mod:`~shared.trainkit.storage.version_claims` (per-model ``flock``; POSIX only).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import torch

from shared.trainkit.checkpoint import MAGIC
from shared.trainkit.errors import ConfigError, ModelNotFoundError, StorageError
from shared.trainkit.executor.types import ModelArtifact, ModelRef
from shared.trainkit.model_file import model_file_name
from shared.trainkit.storage.archive import stream_zip
from shared.trainkit.storage.durable_files import (
    copy_new,
    fsync_all,
    fsync_dir,
    move_aside,
    move_new,
    remove_symlink,
    switch_symlink,
    write_new,
)
from shared.trainkit.storage.integrity import (
    METADATA_FILE,
    file_manifest,
    sha256_of_file,
    stored_files,
    verify_files,
)
from shared.trainkit.storage.model_loading import LoadedModel, load_stored_model
from shared.trainkit.storage.names import (
    TEMP_PREFIX,
    TRASH_PREFIX,
    latest_link_name,
    validate_component,
    version_dir_name,
)
from shared.trainkit.storage.records import ModelSummary, ModelVersion
from shared.trainkit.storage.version_catalog import VersionCatalog
from shared.trainkit.storage.version_claims import (
    claim_next_version,
    existing_versions,
    model_lock,
    release_claim,
)

logger = logging.getLogger(__name__)

FileWriter = Callable[[Path, bytes], None]
JSON_FILES = ("config.json", "metrics.json", "features.json", "metadata.json")
#: A command run's artefacts live in this subfolder of their version, beside the store's own files.
FILES_DIR = "files"


class ModelStorage:
    """Implements :class:`~shared.trainkit.executor.types.ModelSink` and the model query interface.

    ``write_file`` writes one new file (the save fsyncs the version's files together once all are
    written); tests inject a failing one to simulate a crash mid-save.
    """

    def __init__(
        self,
        root: Path,
        *,
        write_file: FileWriter = write_new,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.root = Path(root)
        self._write_file = write_file
        self._clock = clock
        self._catalog = VersionCatalog(self.root)

    # --- writing -------------------------------------------------------------------------------------

    def save(self, artifact: ModelArtifact) -> ModelRef:
        """Store ``artifact`` as the next version of its model and point ``{name}_latest`` at the newest."""
        strategy = validate_component(artifact.strategy, "strategy")
        name = validate_component(artifact.name, "name")
        payload = {
            "config.json": _json_bytes(artifact.config, "config.json"),
            "metrics.json": _json_bytes(artifact.metrics, "metrics.json"),
            "features.json": _json_bytes(artifact.features, "features.json"),
        }
        staged = artifact.staged_model
        if staged is not None:
            moved = {_staged_name(staged.path): staged.path}
            staged_manifest = {name: {"sha256": staged.sha256, "size": staged.size} for name in moved}
        else:
            moved, staged_manifest = {}, {}
            if artifact.model_bytes or not artifact.files:
                payload[model_file_name(artifact.model_bytes)] = bytes(artifact.model_bytes)
        files = {f"{FILES_DIR}/{relative}": Path(path) for relative, path in artifact.files.items()}
        files_manifest = _files_manifest(files)
        strategy_dir = self.root / strategy
        try:
            strategy_dir.mkdir(parents=True, exist_ok=True)
            with model_lock(strategy_dir, name):
                version = claim_next_version(strategy_dir, name)
        except OSError as exc:
            raise StorageError(f"cannot create {strategy_dir}: {exc}", file=str(strategy_dir)) from exc
        metadata = {
            **artifact.metadata,
            "strategy": strategy,
            "name": name,
            "version": version,
            "created_at": self._clock().isoformat(),
            "files": {**file_manifest(payload), **staged_manifest, **files_manifest},
        }
        payload[METADATA_FILE] = _json_bytes(metadata, METADATA_FILE)
        final = strategy_dir / version_dir_name(name, version)
        try:
            self._publish(strategy_dir, name, final, payload, files, moved)
        except BaseException:
            release_claim(strategy_dir, name, version)
            raise
        size = len(artifact.model_bytes) + sum(
            e["size"] for e in {**staged_manifest, **files_manifest}.values()
        )
        logger.info("stored model %s/%s v%d (%d bytes)", strategy, name, version, size)
        return ModelRef(strategy=strategy, name=name, version=version, path=str(final))

    def _publish(
        self,
        strategy_dir: Path,
        name: str,
        final: Path,
        payload: dict[str, bytes],
        files: dict[str, Path] | None = None,
        moved: dict[str, Path] | None = None,
    ) -> None:
        temp = strategy_dir / f"{TEMP_PREFIX}{final.name}-{uuid.uuid4().hex}"
        try:
            os.mkdir(temp)
            written = [temp]
            for filename, data in payload.items():
                self._write_file(temp / filename, data)
                written.append(temp / filename)
            for filename, source in (moved or {}).items():
                move_new(source, temp / filename)
                written.append(temp / filename)
            for relative, source in (files or {}).items():
                written.extend(copy_new(source, temp / relative))
                written.append(temp / relative)
            fsync_all(written)  # every byte and entry of the version on disk before it becomes visible
            with model_lock(strategy_dir, name):
                os.rename(temp, final)  # fails if a non-empty ``final`` exists: nothing is ever clobbered
                fsync_dir(strategy_dir)
                self._point_latest_after_publish(strategy_dir, name)
        except BaseException as exc:
            shutil.rmtree(temp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise StorageError(f"could not store {final.name}: {exc}", file=str(final)) from exc
            raise

    def _point_latest_after_publish(self, strategy_dir: Path, name: str) -> None:
        """The version is stored for good once renamed; a failed pointer switch must not undo that."""
        try:
            self._point_latest(strategy_dir, name)
        except (OSError, StorageError) as exc:
            logger.warning(
                "latest pointer of %s/%s not switched (%s); cleanup_stale repairs it", strategy_dir, name, exc
            )

    def _point_latest(self, strategy_dir: Path, name: str) -> None:
        """Re-point ``{name}_latest`` at the highest complete version. Call holding the model lock."""
        versions = existing_versions(strategy_dir, name)
        link = strategy_dir / latest_link_name(name)
        if versions:
            switch_symlink(link, version_dir_name(name, versions[-1]))
        else:
            remove_symlink(link)

    def delete(self, strategy: str, name: str, version: int) -> None:
        """Remove one version; ``{name}_latest`` moves to the highest remaining one (or disappears)."""
        path = self._catalog.existing_dir(strategy, name, version)
        with model_lock(path.parent, name):
            try:
                trash = move_aside(path, f"{TRASH_PREFIX}{path.name}-{uuid.uuid4().hex}")
            except FileNotFoundError as exc:  # a concurrent delete won
                raise ModelNotFoundError(
                    f"{strategy}/{name} v{version} was just deleted", version=version
                ) from exc
            self._point_latest(path.parent, name)
        shutil.rmtree(trash, ignore_errors=True)
        logger.info("deleted model %s/%s v%d", strategy, name, version)

    def cleanup_stale(self, older_than_s: float = 3600.0) -> list[str]:
        """Sweep what crashes left behind and re-point every ``_latest``; returns the removed paths.

        Temp folders and ``.part`` files (a save or a pointer switch may still be using them) are only
        removed once older than ``older_than_s``; trash folders are removed whatever their age.
        """
        removed: list[str] = []
        cutoff = time.time() - older_than_s
        for strategy_dir in self._catalog.strategy_dirs():
            for entry in os.scandir(strategy_dir):
                if entry.name.startswith(TRASH_PREFIX) or (
                    entry.name.startswith(TEMP_PREFIX) and _older_than(entry, cutoff)
                ):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.path)
                elif (
                    entry.name.startswith(".") and entry.name.endswith(".part") and _older_than(entry, cutoff)
                ):
                    Path(entry.path).unlink(missing_ok=True)
                    removed.append(entry.path)
            for name in self._catalog.model_names(strategy_dir):
                with model_lock(strategy_dir, name):
                    self._point_latest(strategy_dir, name)
        return removed

    # --- reading -------------------------------------------------------------------------------------

    def list_models(self) -> list[ModelSummary]:
        return self._catalog.list_models()

    def list_versions(self, strategy: str, name: str) -> list[ModelVersion]:
        """Every version of one model, newest first."""
        return self._catalog.list_versions(strategy, name)

    def get_version(self, strategy: str, name: str, version: int | None = None) -> ModelVersion:
        """One version; ``None`` means the latest."""
        return self._catalog.get_version(strategy, name, version)

    def load_model(
        self,
        strategy: str,
        name: str,
        version: int | None = None,
        *,
        map_location: str | torch.device = "cpu",
    ) -> LoadedModel:
        """A stored version (``None``: the latest) as a model in eval mode, after every file was checked
        against ``metadata.json``; a tampered or missing file is a :class:`StorageError` naming it."""
        record = self.get_version(strategy, name, version)
        try:
            return load_stored_model(Path(record.path), record, map_location)
        except FileNotFoundError as exc:  # deleted while loading
            raise ModelNotFoundError(
                f"{strategy}/{name} v{record.version} was just deleted", version=record.version
            ) from exc

    def version_dir(self, strategy: str, name: str, version: int) -> Path:
        return self._catalog.existing_dir(strategy, name, version)

    def read_file(self, strategy: str, name: str, version: int, filename: str) -> bytes:
        path = self._catalog.existing_file(strategy, name, version, filename)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ModelNotFoundError(f"{strategy}/{name} v{version} was just deleted", file=filename) from exc

    def load_json(self, strategy: str, name: str, version: int, which: str) -> dict[str, Any]:
        """``which`` is ``config``, ``metrics``, ``features`` or ``metadata`` (``.json`` optional)."""
        filename = which if which.endswith(".json") else f"{which}.json"
        if filename not in JSON_FILES:
            raise ConfigError(
                f"which must be one of {', '.join(f[:-5] for f in JSON_FILES)}, got {which!r}", field="which"
            )
        data = self.read_file(strategy, name, version, filename)
        try:
            loaded = json.loads(data)
        except ValueError as exc:
            raise StorageError(
                f"{filename} of {strategy}/{name} v{version} is not valid JSON: {exc}"
            ) from exc
        if not isinstance(loaded, dict):
            raise StorageError(
                f"{filename} of {strategy}/{name} v{version} is not a JSON object", file=filename
            )
        return loaded

    def verify(self, strategy: str, name: str, version: int) -> None:
        """Recompute every file's sha256 against ``metadata.json``; :class:`StorageError` names a bad file."""
        path = self._catalog.existing_dir(strategy, name, version)
        verify_files(path, f"{strategy}/{name} v{version}")

    def archive(self, strategy: str, name: str, version: int) -> Iterator[bytes]:
        """A zip of the version's files, streamed in chunks. Unknown versions raise here, not mid-stream."""
        path = self._catalog.existing_dir(strategy, name, version)
        files = [(f"{path.name}/{relative}", path / relative) for relative in stored_files(path)]
        return stream_zip(files)

    def write_archive(self, strategy: str, name: str, version: int, out: BinaryIO) -> int:
        """Write :meth:`archive` to ``out``; returns the number of bytes written."""
        written = 0
        for chunk in self.archive(strategy, name, version):
            out.write(chunk)
            written += len(chunk)
        return written


def _staged_name(path: Path) -> str:
    """The name a staged weights file is stored under (by its content, like ``model_bytes``)."""
    with path.open("rb") as handle:
        return model_file_name(handle.read(len(MAGIC)))


def _files_manifest(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {
        name: {"sha256": sha256_of_file(path), "size": path.stat().st_size}
        for name, path in sorted(files.items())
    }


def _older_than(entry: os.DirEntry[str], cutoff: float) -> bool:
    try:
        return entry.stat(follow_symlinks=False).st_mtime < cutoff
    except FileNotFoundError:  # removed meanwhile by its owner
        return False


def _json_bytes(value: dict[str, Any], filename: str) -> bytes:
    if not isinstance(value, dict):
        raise ConfigError(f"{filename} content must be a dict, got {type(value).__name__}", field=filename)
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=_json_scalar).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{filename} content is not JSON-serialisable: {exc}", field=filename) from exc


def _json_scalar(value: object) -> Any:
    """numpy scalars and arrays (``.item()`` / ``.tolist()``) become plain JSON values."""
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
