"""A finished model on the host's disk, kept until the backend acknowledges it.

The child's :class:`ResultFolderSink` writes ``model.pt``, the four JSON files, ``artifact.json``
(strategy and name) and ``manifest.json`` (sha256 and size of each file) into a temp folder and renames
it to ``result/`` (atomic: the folder is complete or absent). ``result.json`` (the TrainingResult) is
written after it; a result is *available* once both exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from shared.trainkit.executor.types import ModelArtifact, ModelRef
from shared.trainkit.storage.durable_files import fsync_dir, replace_durably, write_durably

MODEL_FILE = "model.pt"
MANIFEST_FILE = "manifest.json"
RESULT_FILE = "result.json"
ARTIFACT_FILE = "artifact.json"
_JSON_PARTS = ("config", "metrics", "features", "metadata")


class ResultFolderSink:
    """The ModelSink a host's executor saves into: one result folder per session, no versions."""

    def __init__(self, result_dir: Path) -> None:
        self.result_dir = Path(result_dir)

    def save(self, artifact: ModelArtifact) -> ModelRef:
        staging = self.result_dir.with_name(f".{self.result_dir.name}.{uuid.uuid4().hex}.part")
        staging.mkdir(parents=True)
        try:
            files = {MODEL_FILE: artifact.model_bytes}
            files.update({f"{part}.json": _json(getattr(artifact, part)) for part in _JSON_PARTS})
            files[ARTIFACT_FILE] = _json({"strategy": artifact.strategy, "name": artifact.name})
            for name, data in files.items():
                write_durably(staging / name, data)
            manifest = {
                name: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for name, d in files.items()
            }
            write_durably(staging / MANIFEST_FILE, _json(manifest))
            fsync_dir(staging)
            shutil.rmtree(self.result_dir, ignore_errors=True)
            os.replace(staging, self.result_dir)
            fsync_dir(self.result_dir.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ModelRef(strategy=artifact.strategy, name=artifact.name, version=0, path=str(self.result_dir))


def write_result(result_dir: Path, result: dict[str, Any]) -> None:
    replace_durably(Path(result_dir) / RESULT_FILE, _json(result))


def result_complete(result_dir: Path) -> bool:
    folder = Path(result_dir)
    return all((folder / name).is_file() for name in (MODEL_FILE, MANIFEST_FILE, ARTIFACT_FILE, RESULT_FILE))


def read_result(result_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(result, artifact)`` where artifact has strategy, name, config, metrics, features, metadata."""
    folder = Path(result_dir)
    artifact: dict[str, Any] = json.loads((folder / ARTIFACT_FILE).read_text())
    for part in _JSON_PARTS:
        artifact[part] = json.loads((folder / f"{part}.json").read_text())
    return json.loads((folder / RESULT_FILE).read_text()), artifact


def model_path(result_dir: Path) -> Path:
    return Path(result_dir) / MODEL_FILE


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, default=str).encode()
