"""A finished model on the host's disk, kept until the backend acknowledges it.

The child's :class:`ResultFolderSink` writes the model's bytes (``model.safetensors``; for an artifact of several
files, as a command's, ``artifacts.tar`` holding them all), the four JSON files, ``artifact.json``
(strategy and name; for a bundle also ``"bundle": "tar"`` and each file's sha256 and size) and
``manifest.json`` (sha256 and size of each file) into a temp folder and renames it to ``result/``
(atomic: the folder is complete or absent). ``result.json`` (the TrainingResult) is written after it; a
result is *available* once both exist, or once ``result.json`` exists alone for a run that kept no model
(the sink was never called).

The fsyncs keep one promise: a result the child reported is on disk until the backend acknowledges it,
through a crash of the machine too (the host's recovery finds it complete and sends it again). The
folder's files are all written, then fsynced together (``write_files_durably``), so the disk is waited
for once for the lot, not once per file; the folder is fsynced before its rename (no complete-looking
``result/`` with empty files), its parent after it, and ``result.json`` likewise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from shared.contracts.bundle import BUNDLE_FILE, BUNDLE_TAR, pack_files
from shared.contracts.handoff import sha256_file
from shared.trainkit.executor.types import ModelArtifact, ModelRef
from shared.trainkit.model_file import MODEL_FILES, model_file_name
from shared.trainkit.storage.durable_files import fsync_dir, replace_durably, write_files_durably

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
            described: dict[str, Any] = {"strategy": artifact.strategy, "name": artifact.name}
            manifest: dict[str, dict[str, Any]] = {}
            files: dict[str, bytes] = {}
            if artifact.files and not artifact.model_bytes:
                described.update(bundle=BUNDLE_TAR, files=_pack(artifact, staging / BUNDLE_FILE))
                sha256, size = sha256_file(staging / BUNDLE_FILE)
                manifest[BUNDLE_FILE] = {"sha256": sha256, "size": size}
            else:
                files[model_file_name(artifact.model_bytes)] = artifact.model_bytes
            files.update({f"{part}.json": _json(getattr(artifact, part)) for part in _JSON_PARTS})
            files[ARTIFACT_FILE] = _json(described)
            manifest.update(
                {name: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for name, d in files.items()}
            )
            write_files_durably(staging, {**files, MANIFEST_FILE: _json(manifest)})
            shutil.rmtree(self.result_dir, ignore_errors=True)
            os.replace(staging, self.result_dir)
            fsync_dir(self.result_dir.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ModelRef(strategy=artifact.strategy, name=artifact.name, version=0, path=str(self.result_dir))


def _pack(artifact: ModelArtifact, target: Path) -> dict[str, dict[str, Any]]:
    """The artifact's files into the tar ``target`` (fsynced: it is the model); their sha256 and size."""
    listed = pack_files(artifact.files, target)
    with target.open("rb") as written:
        os.fsync(written.fileno())
    return listed


def write_result(result_dir: Path, result: dict[str, Any]) -> None:
    folder = Path(result_dir)
    folder.mkdir(parents=True, exist_ok=True)  # absent when the run kept no model
    replace_durably(folder / RESULT_FILE, _json(result))


def result_complete(result_dir: Path) -> bool:
    folder = Path(result_dir)
    if not (folder / RESULT_FILE).is_file():
        return False
    if not (folder / ARTIFACT_FILE).is_file():
        return True  # a run that kept no model: the sink never wrote the folder's model part
    return (folder / MANIFEST_FILE).is_file() and model_path(folder) is not None


def read_result(result_dir: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(result, artifact)`` where artifact has strategy, name, config, metrics, features, metadata (and
    bundle and files for a bundle); None when the run kept no model."""
    folder = Path(result_dir)
    result: dict[str, Any] = json.loads((folder / RESULT_FILE).read_text())
    if not (folder / ARTIFACT_FILE).is_file():
        return result, None
    artifact: dict[str, Any] = json.loads((folder / ARTIFACT_FILE).read_text())
    for part in _JSON_PARTS:
        artifact[part] = json.loads((folder / f"{part}.json").read_text())
    return result, artifact


def model_path(result_dir: Path) -> Path | None:
    """The file the hand-off's ``model`` slot carries (``model.safetensors``, ``model.pt`` from before the
    switch, or ``artifacts.tar``), None if absent."""
    folder = Path(result_dir)
    for name in (*MODEL_FILES, BUNDLE_FILE):
        if (folder / name).is_file():
            return folder / name
    return None


def _json(value: Any) -> bytes:
    # Compact: only the hand-off reads these files, and ``indent`` makes ``json`` fall back from its C
    # encoder to the Python one (3-4 times slower, on the child's way to reporting its outcome).
    return json.dumps(value, sort_keys=True, default=str).encode()
