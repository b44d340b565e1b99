"""The read side of the store: find strategies, models and versions, and describe them.

Every lookup validates its names first (nothing outside the root is ever touched) and a miss raises
:class:`ModelNotFoundError` listing what does exist. Only complete version folders count: hidden temp
and trash folders are invisible here.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.trainkit.errors import ModelNotFoundError
from shared.trainkit.storage.integrity import METADATA_FILE, stored_files
from shared.trainkit.storage.names import (
    latest_link_name,
    parse_version_dir,
    validate_component,
    validate_version,
    version_dir_name,
)
from shared.trainkit.storage.records import ModelSummary, ModelVersion
from shared.trainkit.storage.version_claims import existing_versions


class VersionCatalog:
    def __init__(self, root: Path) -> None:
        self.root = root

    def strategy_dirs(self) -> list[Path]:
        try:
            entries = sorted(os.scandir(self.root), key=lambda entry: entry.name)
        except FileNotFoundError:
            return []
        return [
            Path(entry.path)
            for entry in entries
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
        ]

    def model_names(self, strategy_dir: Path) -> list[str]:
        names = set()
        for entry in os.scandir(strategy_dir):
            parsed = parse_version_dir(entry.name)
            if parsed is not None and entry.is_dir(follow_symlinks=False):
                names.add(parsed[0])
        return sorted(names)

    def existing_dir(self, strategy: str, name: str, version: int) -> Path:
        strategy_dir, versions = self._versions(strategy, name)
        validate_version(version)
        if version not in versions:
            raise ModelNotFoundError(
                f"{strategy}/{name} has no version {version}; stored versions: {_join(versions)}",
                strategy=strategy,
                name=name,
                version=version,
                available=versions,
            )
        return strategy_dir / version_dir_name(name, version)

    def existing_file(self, strategy: str, name: str, version: int, filename: str) -> Path:
        path = self.existing_dir(strategy, name, version)
        validate_component(filename, "filename")
        files = sorted(entry.name for entry in path.iterdir())
        if filename not in files:
            raise ModelNotFoundError(
                f"{strategy}/{name} v{version} has no file {filename}; files: {', '.join(files)}",
                file=filename,
                available=files,
            )
        return path / filename

    def list_models(self) -> list[ModelSummary]:
        summaries = []
        for strategy_dir in self.strategy_dirs():
            for name in self.model_names(strategy_dir):
                versions = existing_versions(strategy_dir, name)
                if not versions:  # deleted since the scan
                    continue
                latest = self._latest(strategy_dir, name, versions)
                metadata = _read_json(strategy_dir / version_dir_name(name, latest) / METADATA_FILE)
                summaries.append(
                    ModelSummary(
                        strategy=strategy_dir.name,
                        name=name,
                        latest_version=latest,
                        versions=len(versions),
                        updated_at=_created_at(metadata, strategy_dir / version_dir_name(name, latest)),
                    )
                )
        return summaries

    def list_versions(self, strategy: str, name: str) -> list[ModelVersion]:
        strategy_dir, versions = self._versions(strategy, name)
        latest = self._latest(strategy_dir, name, versions)
        records = []
        for version in reversed(versions):
            try:
                records.append(self._record(strategy_dir, name, version, version == latest))
            except FileNotFoundError:  # deleted while we were listing
                continue
        return records

    def get_version(self, strategy: str, name: str, version: int | None) -> ModelVersion:
        strategy_dir, versions = self._versions(strategy, name)
        latest = self._latest(strategy_dir, name, versions)
        wanted = latest if version is None else version
        path = self.existing_dir(strategy, name, wanted)
        try:
            return self._record(path.parent, name, wanted, wanted == latest)
        except FileNotFoundError as exc:
            raise ModelNotFoundError(f"{strategy}/{name} v{wanted} was just deleted", version=wanted) from exc

    def _versions(self, strategy: str, name: str) -> tuple[Path, list[int]]:
        validate_component(strategy, "strategy")
        validate_component(name, "name")
        strategy_dir = self.root / strategy
        if not strategy_dir.is_dir() or strategy_dir.is_symlink():
            known = [path.name for path in self.strategy_dirs()]
            raise ModelNotFoundError(
                f"no strategy {strategy!r} in the model store; strategies: {_join(known)}",
                strategy=strategy,
                available=known,
            )
        versions = existing_versions(strategy_dir, name)
        if not versions:
            known = self.model_names(strategy_dir)
            raise ModelNotFoundError(
                f"no model {name!r} under strategy {strategy!r}; models: {_join(known)}",
                strategy=strategy,
                name=name,
                available=known,
            )
        return strategy_dir, versions

    def _latest(self, strategy_dir: Path, name: str, versions: list[int]) -> int:
        """The pointer's target when it names a present version, else the highest (after a crash)."""
        try:
            target = os.readlink(strategy_dir / latest_link_name(name))
        except OSError:
            return versions[-1]
        parsed = parse_version_dir(target)
        if parsed is not None and parsed[0] == name and parsed[1] in versions:
            return parsed[1]
        return versions[-1]

    def _record(self, strategy_dir: Path, name: str, version: int, is_latest: bool) -> ModelVersion:
        path = strategy_dir / version_dir_name(name, version)
        files = [path / relative for relative in stored_files(path)]
        return ModelVersion(
            strategy=strategy_dir.name,
            name=name,
            version=version,
            path=str(path),
            created_at=_created_at(_read_json(path / METADATA_FILE), path),
            is_latest=is_latest,
            size_bytes=sum(file.stat().st_size for file in files if file.is_file()),
            metrics=_read_json(path / "metrics.json"),
        )


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when unreadable: listings must survive one bad file
    (``verify`` is where corruption is reported)."""
    try:
        loaded = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _created_at(metadata: dict[str, Any], path: Path) -> datetime:
    raw = metadata.get("created_at")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return datetime.fromtimestamp(0, UTC)


def _join(items: list[Any]) -> str:
    return ", ".join(str(item) for item in items) if items else "(none)"
