"""The run record of one fit, on disk in a run folder:

- ``run.json``          config, seed, python/torch versions, device, start time (written at start);
- ``metrics.jsonl``     one JSON line per epoch, appended by a background writer thread;
- ``run_summary.json``  status (completed/failed/cancelled) and min/max/mean/p50/p95/last of every
                        metric (written on every exit path);
- ``artifacts.json``    every file the run produced: path, kind, bytes, sha256 (the three files above,
                        the checkpoints and whatever else was added; not itself).
- ``telemetry.jsonl``   scoped timers of the execution (:mod:`shared.trainkit.telemetry`); their rollups
                        are merged into the summary under ``telemetry`` by :func:`write_telemetry_summary`.

Backpressure: metric lines go through a bounded ``queue.Queue``. When it is full (the disk stalls),
:meth:`MetricsWriter.write` blocks up to ``put_timeout_s`` to absorb a hiccup, then *drops* the line
and counts it (``metrics_lines_dropped`` in the summary) rather than stall training indefinitely:
metrics.jsonl is a log, the summary and the fit result are computed from the in-memory rows and stay
complete. At one line per epoch the queue fills only when the disk is badly stuck.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import torch

from shared.trainkit.jsonl_writer import JsonLinesWriter
from shared.trainkit.rollups import percentile

logger = logging.getLogger(__name__)

RUN_FILE: Final = "run.json"
METRICS_FILE: Final = "metrics.jsonl"
SUMMARY_FILE: Final = "run_summary.json"
ARTIFACTS_FILE: Final = "artifacts.json"
TELEMETRY_FILE: Final = "telemetry.jsonl"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ArtifactKind(StrEnum):
    CHECKPOINT = "checkpoint"
    MODEL = "model"
    METRICS = "metrics"
    CONFIG = "config"
    REPORT = "report"
    TELEMETRY = "telemetry"
    OTHER = "other"


@dataclass(frozen=True)
class Artifact:
    path: str
    kind: ArtifactKind
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": str(self.kind)}


def describe_artifact(path: Path, kind: ArtifactKind) -> Artifact:
    """Size and sha256 of the file at ``path`` (streamed, so big files are fine)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return Artifact(path=str(path), kind=kind, bytes=path.stat().st_size, sha256=digest.hexdigest())


def summarize_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | int]]:
    """min/max/mean/p50/p95/last/count of every numeric column (``epoch`` excluded; None/NaN skipped)."""
    columns: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.items():
            if name == "epoch" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                columns.setdefault(name, []).append(float(value))
    summary: dict[str, dict[str, float | int]] = {}
    for name, values in columns.items():
        ordered = sorted(values)
        summary[name] = {
            "min": ordered[0],
            "max": ordered[-1],
            "mean": sum(values) / len(values),
            "p50": percentile(ordered, 50),
            "p95": percentile(ordered, 95),
            "last": values[-1],
            "count": len(values),
        }
    return summary


def write_json(path: Path, content: Any) -> None:
    """Write JSON atomically (temp file + replace) so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def environment() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "platform": platform.platform(),
    }


class MetricsWriter(JsonLinesWriter):
    """metrics.jsonl's writer: a full queue blocks the caller up to ``put_timeout_s``, then the line is
    dropped and counted in ``dropped``."""

    def __init__(self, path: Path, *, max_pending: int = 256, put_timeout_s: float = 1.0) -> None:
        super().__init__(path, max_pending=max_pending, thread_name=f"metrics-writer:{path.parent.name}")
        self.put_timeout_s = put_timeout_s
        self.dropped = 0

    def write(self, row: Mapping[str, Any]) -> bool:
        """Queue one line; False when it was dropped because the queue stayed full."""
        if self.put(row, timeout_s=self.put_timeout_s):
            return True
        self.dropped += 1
        logger.warning("metrics queue for %s full for %.1fs; dropped a line", self.path, self.put_timeout_s)
        return False


class RunRecord:
    """Writes one run's folder. ``start`` → ``log_epoch`` … → ``finish`` (safe to call on any exit path)."""

    def __init__(self, run_dir: Path, *, max_pending: int = 256, put_timeout_s: float = 1.0) -> None:
        self.run_dir = Path(run_dir)
        self.rows: list[dict[str, Any]] = []
        self.artifacts: dict[str, Artifact] = {}
        self.started_at: datetime | None = None
        self._writer: MetricsWriter | None = None
        self._max_pending = max_pending
        self._put_timeout_s = put_timeout_s

    @property
    def started(self) -> bool:
        return self.started_at is not None

    def start(self, *, config: Mapping[str, Any], seed: int, device: Mapping[str, Any], **extra: Any) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.started_at = datetime.now(UTC)
        run = {"config": dict(config), "seed": seed, "device": dict(device), "started_at": self.started_at}
        write_json(self.run_dir / RUN_FILE, {**run, **environment(), **extra})
        self._writer = MetricsWriter(
            self.run_dir / METRICS_FILE, max_pending=self._max_pending, put_timeout_s=self._put_timeout_s
        )

    def resume(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        config: Mapping[str, Any],
        seed: int,
        device: Mapping[str, Any],
        **extra: Any,
    ) -> None:
        """Continue the run in ``run_dir`` after a resume: ``run.json`` keeps its start and lists the
        resume, ``metrics.jsonl`` is rewritten to ``rows`` (the epochs the checkpoint holds, so an epoch
        run again after the checkpoint is not listed twice) and then appended to."""
        run_file = self.run_dir / RUN_FILE
        previous = _read_json_object(run_file)
        if not previous:
            self.start(config=config, seed=seed, device=device, **extra)
        else:
            now = datetime.now(UTC)
            started = previous.get("started_at")
            self.started_at = datetime.fromisoformat(started) if isinstance(started, str) else now
            resumes = [*previous.get("resumed", []), {"at": now, "epoch": len(rows), "device": dict(device)}]
            write_json(run_file, {**previous, "resumed": resumes})
        self.rows = [dict(row) for row in rows]
        lines = "".join(json.dumps(row, default=str) + "\n" for row in self.rows)
        metrics = self.run_dir / METRICS_FILE
        tmp = metrics.with_name(f".{metrics.name}.tmp")
        tmp.write_text(lines, encoding="utf-8")
        os.replace(tmp, metrics)
        if self._writer is None:
            self._writer = MetricsWriter(
                metrics, max_pending=self._max_pending, put_timeout_s=self._put_timeout_s
            )

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))
        if self._writer is not None:
            self._writer.write(row)

    def add_artifact(self, path: Path, kind: ArtifactKind) -> None:
        if path.is_file():
            self.artifacts[str(path)] = describe_artifact(path, kind)

    def finish(self, status: RunStatus, **outcome: Any) -> dict[str, Any]:
        """Stop the writer, then write ``run_summary.json`` and ``artifacts.json`` (listing every file the
        run wrote, the summary included); returns the summary."""
        dropped = 0
        if self._writer is not None:
            if not self._writer.close():
                logger.warning("metrics writer for %s did not finish in time", self.run_dir)
            dropped = self._writer.dropped
            self.add_artifact(self._writer.path, ArtifactKind.METRICS)
            self._writer = None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        finished = datetime.now(UTC)
        summary = {
            "status": str(status),
            "started_at": self.started_at,
            "finished_at": finished,
            "duration_s": (finished - self.started_at).total_seconds() if self.started_at else None,
            "epochs": len(self.rows),
            "metrics": summarize_metrics(self.rows),
            "metrics_lines_dropped": dropped,
            **outcome,
        }
        write_json(self.run_dir / SUMMARY_FILE, summary)
        self.add_artifact(self.run_dir / RUN_FILE, ArtifactKind.CONFIG)
        self.add_artifact(self.run_dir / SUMMARY_FILE, ArtifactKind.REPORT)
        write_json(self.run_dir / ARTIFACTS_FILE, [a.as_dict() for a in self.artifacts.values()])
        return summary


def write_telemetry_summary(run_dir: Path, rollups: Mapping[str, Mapping[str, float | int]]) -> None:
    """Merge ``{"telemetry": rollups}`` into the run's ``run_summary.json`` (atomically; the file is
    created when absent, other keys are kept).

    When the run already listed its files in ``artifacts.json``, the entries of the summary (its hash
    changed) and of ``telemetry.jsonl`` are brought up to date too, so that list stays true."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary_path = run_dir / SUMMARY_FILE
    summary = _read_json_object(summary_path)
    summary["telemetry"] = {name: dict(stats) for name, stats in rollups.items()}
    write_json(summary_path, summary)
    _refresh_artifacts(
        run_dir, {summary_path: ArtifactKind.REPORT, run_dir / TELEMETRY_FILE: ArtifactKind.TELEMETRY}
    )


def _read_json_object(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("run summary %s is unreadable; writing a fresh one", path, exc_info=True)
        return {}
    if not isinstance(content, dict):
        logger.warning("run summary %s is not a JSON object; writing a fresh one", path)
        return {}
    return content


def _refresh_artifacts(run_dir: Path, files: Mapping[Path, ArtifactKind]) -> None:
    listing_path = run_dir / ARTIFACTS_FILE
    listing = _read_json_list(listing_path)
    if listing is None:
        return
    by_path = {Path(str(entry.get("path"))).resolve(): entry for entry in listing}
    for path, kind in files.items():
        if not path.is_file():
            continue
        listed = by_path.get(path.resolve())
        artifact = describe_artifact(path, kind).as_dict()
        if listed is None:
            listing.append(artifact)
        else:
            listed.update({**artifact, "path": listed["path"]})
    write_json(listing_path, listing)


def _read_json_list(path: Path) -> list[dict[str, Any]] | None:
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("artifact list %s is unreadable; left as it is", path, exc_info=True)
        return None
    if not isinstance(content, list) or not all(isinstance(entry, dict) for entry in content):
        return None
    return content
