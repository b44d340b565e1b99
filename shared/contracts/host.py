"""Wire schemas of the host service: what the backend sends a host and what it gets back (pydantic only).

Endpoints (every request signed, see :mod:`shared.contracts.signing`)::

    GET  /health                                  -> HostHealth
    POST /training/start          StartSession    -> 202 SessionView   (409 SESSION_CONFLICT, 503 + Retry-After)
    GET  /training/status/{session_id}            -> SessionView
    POST /training/stop/{session_id}              -> SessionView
    GET  /training/result/{session_id}            -> result payload (shared.contracts.handoff; ResultPayload)
    GET  /training/result/{session_id}/model      -> raw model.safetensors (or artifacts.tar) bytes, header MODEL_SHA256_HEADER
    POST /training/result/{session_id}/ack        -> SessionView
    GET  /training/sessions                       -> SessionList

The backend's side of a session (signed requests too): the host PUTs each new training checkpoint to the
session's ``checkpoint_url`` with ``?session_id=&epoch=&sha256=&size=&name=`` (the signature covers the
query, so the body's digest and size are signed; ``epoch`` is the label of the file ``name``: an epoch,
or a command checkpoint's step, see :func:`checkpoint_label`), and GETs a ``resume_checkpoint``'s ``url``
before it trains.

Errors have the body ``{"error": {"code", "message", "details"}}`` (:class:`HostErrorBody`).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.training import ProgressUpdate, TrainingRequest

MODEL_SHA256_HEADER = "X-Content-SHA256"
HOST_API_VERSION = "1"

_SHA256 = "^[0-9a-f]{64}$"
_FILENAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

#: The two forms of a shipped training checkpoint's file name, no path parts: trainkit's
#: ``epoch-000012.ckpt`` (labelled with its epoch) and a command's kept copy ``step-000000400-last.pt``
#: (labelled with its step; the program's own file name follows, letters, digits, ``.``, ``_``, ``-``).
CHECKPOINT_NAME = re.compile(r"epoch-(?P<epoch>\d{6})\.ckpt|step-(?P<step>\d{9})-[A-Za-z0-9._-]{1,128}")
CheckpointKind = Literal["epoch", "step"]


def checkpoint_label(name: str) -> tuple[CheckpointKind, int] | None:
    """Which form ``name`` has and the epoch or step it carries; None for any other name."""
    match = CHECKPOINT_NAME.fullmatch(name)
    if match is None:
        return None
    if match["epoch"] is not None:
        return "epoch", int(match["epoch"])
    return "step", int(match["step"])


def newest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The checkpoint with the highest label (epoch or step) in ``folder``, and that label (a host or a
    Ray job ships it; partial files, whose names start with a dot, never match)."""
    try:
        paths = list(folder.iterdir())
    except FileNotFoundError:
        return None
    labelled = [(path, label[1]) for path in paths if (label := checkpoint_label(path.name)) is not None]
    return max(labelled, key=lambda item: (item[1], item[0].name), default=None)


def epoch_checkpoint_name(epoch: int) -> str:
    """The name of a training checkpoint, trainkit's and the wire's (``shared.trainkit.resume.checkpoint_name``)."""
    return f"epoch-{epoch:06d}.ckpt"


def step_checkpoint_name(step: int, file_name: str) -> str:
    """The name of a command's kept checkpoint, trainkit's and the wire's: ``step-NNNNNNNNN-<file>``, the
    program's file name in the wire's alphabet (any other character becomes ``_``; past 128 characters
    its end is kept, with the extension), so every kept copy can be shipped."""
    safe = _UNSAFE.sub("_", file_name)[-_STEP_FILE_MAX:] or "_"
    return f"step-{step:09d}-{safe}"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_STEP_FILE_MAX = 128


class SessionStatusName(StrEnum):
    """``starting`` covers the data download; ``stopping`` is a stop in progress."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_SESSION_STATUSES = frozenset(
    {SessionStatusName.COMPLETED, SessionStatusName.FAILED, SessionStatusName.CANCELLED}
)


class DatasetRef(BaseModel):
    """A file the host downloads into the session's data folder before training."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(..., pattern=_FILENAME, description="Name in the data folder, e.g. EURUSD_1h.csv.")
    sha256: str = Field(..., pattern=_SHA256, description="sha256 hex digest of the file's bytes.")
    url: str = Field(..., min_length=1, description="Absolute URL the host GETs (signed) to download it.")


class CheckpointRef(BaseModel):
    """A training checkpoint the backend holds for the operation: the host downloads it (a signed GET,
    like the data) and the training resumes from it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., min_length=1, description="Absolute URL the host GETs (signed) to download it.")
    epoch: int = Field(
        ..., ge=0, description="The epoch the checkpoint was written after (a command checkpoint: its step)."
    )
    sha256: str = Field(..., pattern=_SHA256)
    size: int = Field(..., ge=0)
    name: str | None = Field(
        None,
        description="The file's name, `epoch-NNNNNN.ckpt` or a command's `step-NNNNNNNNN-<file>` (null: "
        "the epoch form), put as it is into the training's checkpoint folder.",
    )

    @model_validator(mode="after")
    def _name_carries_the_label(self) -> CheckpointRef:
        if self.name is None:
            return self
        label = checkpoint_label(self.name)
        if label is None:
            raise ValueError("name: not a checkpoint file name (epoch-NNNNNN.ckpt or step-NNNNNNNNN-<file>)")
        if label[1] != self.epoch:
            raise ValueError(f"name: {self.name} does not carry the label {self.epoch}")
        return self

    @property
    def kind(self) -> CheckpointKind:
        label = checkpoint_label(self.name) if self.name is not None else None
        return label[0] if label is not None else "epoch"

    @property
    def file_name(self) -> str:
        return self.name if self.name is not None else epoch_checkpoint_name(self.epoch)


class StartSession(BaseModel):
    """POST /training/start: the backend's operation id travels end to end."""

    model_config = ConfigDict(extra="forbid")

    operation_id: str = Field(..., min_length=1, max_length=200)
    request: TrainingRequest
    callback_url: str = Field(..., min_length=1, description="Where the host POSTs the result payload.")
    datasets: list[DatasetRef] = Field(default_factory=list)
    checkpoint_url: str | None = Field(
        None, description="Where the host PUTs each new training checkpoint; null: it ships none."
    )
    resume_checkpoint: CheckpointRef | None = Field(
        None, description="The checkpoint to resume from (a retry of a lost training); null: from scratch."
    )


class SessionError(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class HostLogLine(BaseModel):
    """One log record of the training on the host; ``seq`` counts up from 1 within a session."""

    seq: int
    level: str
    logger: str
    message: str


class SessionView(BaseModel):
    session_id: str
    operation_id: str
    status: SessionStatusName
    progress: ProgressUpdate | None = None
    device: str | None = None
    created_at: datetime
    updated_at: datetime
    last_heartbeat: datetime | None = None
    error: SessionError | None = None
    result_available: bool = False
    result_acknowledged: bool = False
    callback_delivered: bool = False
    worker_pid: int | None = None
    #: The last epochs' metric rows (``epoch`` and its metrics), oldest first: the backend follows these.
    recent_epochs: list[dict[str, Any]] = Field(default_factory=list)
    #: The last log lines of the training, oldest first.
    recent_logs: list[HostLogLine] = Field(default_factory=list)
    #: The epoch of the checkpoint the training resumed from (0: it had none valid); null: not a resume.
    resumed_from_epoch: int | None = None


class SessionList(BaseModel):
    items: list[SessionView]


class DeviceView(BaseModel):
    kind: str
    name: str
    memory_bytes: int | None = None


class HostHealth(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    api_version: str = HOST_API_VERSION
    device: DeviceView
    capacity: int
    sessions_in_use: int
    signing_required: bool


class InlineModel(BaseModel):
    encoding: Literal["gzip+base64"]
    data: str
    sha256: str = Field(..., pattern=_SHA256)
    size: int = Field(..., ge=0)


class ExternalModel(BaseModel):
    encoding: Literal["external"]
    url: str = Field(..., description="Relative to the host's base URL unless absolute.")
    sha256: str = Field(..., pattern=_SHA256)
    size: int = Field(..., ge=0)


class BundledFile(BaseModel):
    sha256: str = Field(..., pattern=_SHA256)
    size: int = Field(..., ge=0)


class ResultArtifact(BaseModel):
    """What the model version holds besides the ``model`` slot's bytes. ``bundle`` absent: those bytes
    are a ``model.safetensors``; ``"tar"``: an uncompressed tar of ``files`` (a command's artefacts, see
    :mod:`shared.contracts.bundle`), each checked against its sha256 and size on arrival."""

    strategy: str
    name: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    features: dict[str, Any]
    metadata: dict[str, Any]
    bundle: Literal["tar"] | None = None
    files: dict[str, BundledFile] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _files_only_in_a_bundle(self) -> ResultArtifact:
        if self.bundle is None and self.files:
            raise ValueError("'files' are listed only for a bundle (bundle: 'tar')")
        if self.bundle is not None and not self.files:
            raise ValueError("a bundle lists at least one file in 'files'")
        return self


class ResultPayload(BaseModel):
    """The body of the result callback and of GET /training/result/{session_id}.

    ``artifact`` and ``model`` are both null for a run that kept no model (a command whose artefact
    globs matched nothing): the operation completes with the result's warnings and no model version."""

    operation_id: str
    session_id: str
    result: dict[str, Any]
    artifact: ResultArtifact | None
    model: Annotated[InlineModel | ExternalModel, Field(discriminator="encoding")] | None

    @model_validator(mode="after")
    def _model_with_artifact(self) -> ResultPayload:
        if (self.artifact is None) != (self.model is None):
            raise ValueError("'artifact' and 'model' are both given or both null")
        return self


class HostErrorBody(BaseModel):
    error: SessionError
