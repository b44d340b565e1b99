"""SessionCommands: what a remote runner (a host, a Ray job) needs to start an operation's training.

The resolved request, and every data file it reads with its sha256 and the URL to fetch it from (a host
or a Ray worker shares no disk with the backend). Digests are cached by (path, size, mtime). Given the
kept checkpoints, also where to ship training checkpoints and, for an attempt that resumes, the newest
checkpoint to resume from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from backend.domain.attempts import resumes_from_checkpoint
from backend.domain.operations import Operation
from backend.domain.ports import DatasetCatalog, ResumeCheckpoints
from shared.contracts.host import CheckpointRef, DatasetRef, StartSession
from shared.contracts.training import TrainingRequest, Workload
from shared.trainkit.errors import ConfigError, DataNotFoundError

CALLBACK_PATH = "/api/v1/callbacks/host-result"
CHECKPOINTS_PATH = "/api/v1/callbacks/checkpoints"


class SessionCommands:
    def __init__(
        self, datasets: DatasetCatalog, backend_url: str, *, checkpoints: ResumeCheckpoints | None = None
    ) -> None:
        self._datasets = datasets
        self._backend_url = backend_url.rstrip("/")
        self._checkpoints = checkpoints
        self._digests: dict[tuple[str, int, int], str] = {}

    def files_of(self, op: Operation) -> dict[str, Path]:
        """The data files the operation's training reads, by the name they take on the remote side."""
        return {ref.filename: path for ref, path in self._refs(op)[1]}

    def build(self, op: Operation) -> StartSession:
        """What the remote side needs: the request and every data file it reads. ConfigError or
        DataNotFoundError (trainkit errors) when the request cannot travel."""
        request, refs = self._refs(op)
        return StartSession(
            operation_id=op.id,
            request=request,
            callback_url=self._backend_url + CALLBACK_PATH,
            datasets=[ref for ref, _ in refs],
            checkpoint_url=self._checkpoint_url(op) if self._checkpoints is not None else None,
            resume_checkpoint=self.resume_checkpoint(op),
        )

    def resume_checkpoint(self, op: Operation) -> CheckpointRef | None:
        """The newest kept checkpoint when this attempt resumes (a retry) and one is kept."""
        if self._checkpoints is None or not resumes_from_checkpoint(op):
            return None
        url = self._checkpoint_url(op)
        kept = self._checkpoints.latest(op.id)
        if kept is None:
            return None
        return CheckpointRef(
            url=url, epoch=kept.epoch, sha256=kept.sha256, size=kept.size, name=kept.path.name
        )

    def _checkpoint_url(self, op: Operation) -> str:
        return f"{self._backend_url}{CHECKPOINTS_PATH}/{quote(op.id)}"

    def _refs(self, op: Operation) -> tuple[TrainingRequest, list[tuple[DatasetRef, Path]]]:
        request = TrainingRequest.model_validate(op.request)
        if request.workload is Workload.PLUGIN:
            raise ConfigError(
                "plugin trainings run only in local mode: plugins are allowlisted per machine",
                field="workload",
            )
        refs: list[tuple[DatasetRef, Path]] = []

        def add(path: Path, url: str) -> None:
            refs.append((DatasetRef(filename=path.name, sha256=self._sha256(path), url=url), path))

        for symbol in request.symbols:
            for timeframe in request.timeframes:
                path = self._datasets.path_of(symbol, timeframe)
                add(path, f"{self._backend_url}/api/v1/data/{symbol}/{timeframe}/download")
        if request.tabular is not None:
            path = self._datasets.file_path(request.tabular.dataset)
            add(path, f"{self._backend_url}/api/v1/data/files/{quote(request.tabular.dataset)}/download")
            # The remote side puts every file flat in its data folder: name the dataset as it lands there.
            tabular = request.tabular.model_copy(update={"dataset": path.name})
            request = request.model_copy(update={"tabular": tabular})
        if request.command is not None and request.command.dataset:
            dataset = request.command.dataset
            path = self._command_dataset(dataset)
            add(path, f"{self._backend_url}/api/v1/data/files/{quote(dataset)}/download")
            spec = request.command.model_copy(update={"dataset": path.name})
            request = request.model_copy(update={"command": spec})
        return request, refs

    def _command_dataset(self, dataset: str) -> Path:
        """The one data file a command reads; a folder cannot travel to a host (data goes file by file)."""
        refusal = ConfigError(
            f"command.dataset {dataset!r} is not a single file of the data folder (a folder?): a host "
            "receives a command's dataset as one file; run this training with execution_mode 'local'",
            field="command.dataset",
        )
        try:
            path = self._datasets.file_path(dataset)
        except DataNotFoundError as exc:
            raise refusal from exc
        if path.name != PurePosixPath(dataset).name:  # file_path's '.csv' guess: not the named entry
            raise refusal
        return path

    def _sha256(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._digests:
            digest = hashlib.sha256()
            with path.open("rb") as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
            self._digests[key] = digest.hexdigest()
        return self._digests[key]
