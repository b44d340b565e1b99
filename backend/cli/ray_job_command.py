"""``modelyard ray-job``: the entrypoint of a Ray job. Runs one operation's training with the same
TrainingExecutor as local and host mode, and reports to the backend that submitted it over HTTP.

It authenticates with the job token in MODELYARD_JOB_TOKEN (scoped to this job of its operation: its spec, its
data files, its progress, its training checkpoints and its result; never the shared secret). The training
writes checkpoints into its run folder (``--checkpoint-every-epochs``, ``--checkpoint-min-interval``) and
a thread ships each new one to the backend's checkpoint route, so a lost job is submitted again resuming
from it: a re-submitted job downloads that checkpoint first (sha256 checked). Small models travel inline
in the result; bigger ones are streamed first (PUT /model). A training error is posted as the
operation's failure and the job exits 1; a cancel arrives as Ray's stop_job (SIGTERM), which ends the
process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click
import httpx

from shared.contracts.bundle import BUNDLE_FILE, BUNDLE_TAR, pack_files
from shared.contracts.checkpoint_shipping import CheckpointSettings, next_checkpoint
from shared.contracts.handoff import (
    build_payload,
    encode_model_inline,
    file_chunks,
    payload_bytes,
    sha256_file,
)
from shared.contracts.host import MODEL_SHA256_HEADER, StartSession
from shared.contracts.ray_jobs import JOB_TOKEN_ENV, UPLOADED_MODEL_URL, JobProgress
from shared.contracts.training import ProgressUpdate

logger = logging.getLogger("modelyard.ray_job")
#: Least time between two plain progress posts; updates carrying epoch metrics or decisions always go.
PROGRESS_INTERVAL_S = 0.5


class JobFailedError(Exception):
    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


class BackendLink:
    """The job's calls to its backend, each under ``/api/v1/ray/jobs/{operation_id}``, with timeouts."""

    def __init__(
        self,
        backend_url: str,
        operation_id: str,
        token: str,
        *,
        timeout_s: float,
        retry_s: float,
        submission_id: str | None = None,
    ) -> None:
        self.base = f"{backend_url.rstrip('/')}/api/v1/ray/jobs/{operation_id}"
        #: Which job of the operation this is (a retry's job has an id of its own): its session.
        self.submission_id = submission_id or operation_id
        self.retry_s = retry_s
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, read=max(timeout_s, 300.0)),
        )

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call, retried on no answer or a 5xx until ``retry_s`` has passed (a backend restarting
        mid-job comes back and takes the result); a 4xx is final."""
        url = path if path.startswith("http") else self.base + path
        deadline = time.monotonic() + self.retry_s
        wait = 0.5
        while True:
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if time.monotonic() > deadline:
                    raise JobFailedError("backend_unreachable", f"{method} {url}: {exc}") from exc
            else:
                if response.status_code < 500 or time.monotonic() > deadline:
                    break
            time.sleep(wait)
            wait = min(wait * 2, 5.0)
        if response.status_code >= 400:
            raise JobFailedError(
                "backend_refused", f"{method} {url}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response


def run_job(
    link: BackendLink,
    workdir: Path,
    *,
    commands_dir: Path | None,
    inline_limit: int,
    checkpoints: CheckpointSettings | None = None,
) -> None:
    from shared.trainkit.cancellation import CancelToken
    from shared.trainkit.executor import TrainingExecutor
    from shared.trainkit.executor.workload import CheckpointPolicy

    checkpoints = checkpoints or CheckpointSettings()
    spec = StartSession.model_validate(link.call("GET", "/spec", params={"checkpoints": "true"}).json())
    data_dir = workdir / "data"
    data_dir.mkdir()
    for ref in spec.datasets:
        _download(link, ref.url, data_dir / ref.filename, ref.sha256)
    logger.info("fetched %d data file(s); training starts", len(spec.datasets))
    runs = workdir / "runs"
    folder = runs / spec.operation_id / "checkpoints"  # the executor's <run folder>/checkpoints
    resume = spec.resume_checkpoint
    if resume is not None:  # a re-submitted job: the newest checkpoint the lost one shipped
        folder.mkdir(parents=True)
        _download(link, resume.url, folder / resume.file_name, resume.sha256)
        logger.info("resuming from checkpoint %s", resume.file_name)
    sink = FolderSink(workdir / "result")
    executor = TrainingExecutor(
        data_dir,
        sink,
        commands_dir=commands_dir,
        scratch_dir=workdir / "scratch",
        run_root=runs,
        checkpoints=CheckpointPolicy(checkpoints.every_epochs, checkpoints.min_interval_s),
    )
    reporter = ProgressReporter(link)
    shipper = CheckpointShipper(link, spec, folder, poll_s=checkpoints.poll_s)
    shipper.start()
    try:
        result = executor.execute(
            spec.request, reporter, CancelToken(), run_name=spec.operation_id, resume=resume is not None
        )
    finally:
        shipper.stop()
    reporter.flush()
    artifact, model = sink.handoff(link, inline_limit)
    payload = build_payload(
        operation_id=spec.operation_id,
        session_id=link.submission_id,
        result=result.as_dict(),
        artifact=artifact,
        model=model,
    )
    answer = link.call(
        "POST", "/result", content=payload_bytes(payload), headers={"content-type": "application/json"}
    )
    logger.info("result delivered: %s", answer.json().get("model"))


class CheckpointShipper:
    """Ships each new newest training checkpoint of the job to the spec's ``checkpoint_url`` (a thread):
    streamed, with its name, label, sha256 and size, under the job token — the steps a host's shipper
    shares (``shared.contracts.checkpoint_shipping``). A refusal (4xx) is logged and that file not sent
    again; no answer or a 5xx is tried again at the next look."""

    def __init__(self, link: BackendLink, spec: StartSession, folder: Path, *, poll_s: float) -> None:
        self._link = link
        self._url = spec.checkpoint_url
        self._session_id = link.submission_id  # a job's session is its Ray submission
        self._folder = folder
        self._poll_s = poll_s
        resumed = spec.resume_checkpoint
        self.shipped = resumed.file_name if resumed is not None else None  # the backend's already
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="checkpoint-shipper", daemon=True)

    def start(self) -> None:
        if self._url is not None:  # a backend that takes no checkpoints from jobs gives no URL
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30.0)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.ship_newest()

    def ship_newest(self) -> None:
        if self._url is None:
            return
        with next_checkpoint(self._folder, self.shipped) as newest:
            if newest is None:
                return
            name = newest.name
            query, size = newest.describe(self._session_id)
            try:
                response = self._link.http.put(
                    self._url, params=query, content=newest.chunks(), headers={"content-length": str(size)}
                )
            except httpx.HTTPError as exc:
                logger.warning("checkpoint %s not shipped (the next look retries): %s", name, exc)
                return
        if response.status_code >= 500:
            logger.warning("checkpoint %s not shipped (HTTP %d), retried", name, response.status_code)
            return
        self.shipped = name
        if response.status_code >= 400:
            logger.warning(
                "checkpoint %s refused: HTTP %d %s", name, response.status_code, response.text[:300]
            )
        else:
            logger.info("checkpoint %s (%d bytes) shipped", name, size)


class ProgressReporter:
    def __init__(self, link: BackendLink) -> None:
        self._link = link
        self._last = 0.0
        self._pending: ProgressUpdate | None = None
        self._device: str | None = None

    def __call__(self, update: ProgressUpdate) -> None:
        device = update.extra.get("device")
        if isinstance(device, str):
            self._device = device
        if update.extra or time.monotonic() - self._last >= PROGRESS_INTERVAL_S:
            self._send(update)
        else:
            self._pending = update

    def flush(self) -> None:
        if self._pending is not None:
            self._send(self._pending)

    def _send(self, update: ProgressUpdate) -> None:
        self._pending = None
        self._last = time.monotonic()
        body = JobProgress(progress=update, device=self._device)
        self._link.call(
            "POST", "/progress", content=body.model_dump_json(), headers={"content-type": "application/json"}
        )


class FolderSink:
    """The executor's ModelSink in a job: the model kept on the worker's disk until it is handed off."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.artifact: Any = None

    def save(self, artifact: Any) -> Any:
        from shared.trainkit.executor.types import ModelRef

        self.folder.mkdir(parents=True, exist_ok=True)
        self.artifact = artifact
        if artifact.files and not artifact.model_bytes:
            self.files = pack_files(artifact.files, self.folder / BUNDLE_FILE)
            self.model_file = self.folder / BUNDLE_FILE
        else:
            self.files = {}
            self.model_file = self.folder / "model.pt"
            self.model_file.write_bytes(artifact.model_bytes)
        return ModelRef(strategy=artifact.strategy, name=artifact.name, version=0, path=str(self.folder))

    def handoff(
        self, link: BackendLink, inline_limit: int
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The payload's ``artifact`` and ``model``: inline when small, else streamed to the backend first."""
        a = self.artifact
        if a is None:
            return None, None
        artifact: dict[str, Any] = {
            "strategy": a.strategy,
            "name": a.name,
            "config": a.config,
            "metrics": a.metrics,
            "features": a.features,
            "metadata": a.metadata,
        }
        if self.files:
            artifact.update(bundle=BUNDLE_TAR, files=self.files)
        sha256, size = sha256_file(self.model_file)
        if size <= inline_limit:
            return artifact, encode_model_inline(self.model_file)
        with self.model_file.open("rb") as body:
            link.call("PUT", "/model", content=file_chunks(body), headers={MODEL_SHA256_HEADER: sha256})
        logger.info("streamed the model (%d bytes) to the backend", size)
        return artifact, {"encoding": "external", "url": UPLOADED_MODEL_URL, "sha256": sha256, "size": size}


def _download(link: BackendLink, url: str, target: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with link.http.stream("GET", url) as response:
        if response.status_code != 200:
            raise JobFailedError(
                "dataset_unavailable", f"GET {url}: HTTP {response.status_code} {response.read()[:300]!r}"
            )
        with target.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    if digest.hexdigest() != sha256:
        raise JobFailedError(
            "dataset_unavailable", f"{target.name}: sha256 {digest.hexdigest()}, expected {sha256}"
        )


@click.command(
    "ray-job",
    help="Run one operation's training inside a Ray job (the entrypoint ray mode submits; not for humans). "
    f"Reads the job token from {JOB_TOKEN_ENV}.",
)
@click.option(
    "--backend-url", required=True, help="The backend that submitted the job (MODELYARD_PUBLIC_URL)."
)
@click.option("--operation-id", required=True, help="The operation.")
@click.option(
    "--submission-id",
    default=None,
    help="This job's Ray submission id (default: the operation id; a retry's job has its own).",
)
@click.option(
    "--commands-dir",
    type=click.Path(path_type=Path),
    default=None,
    envvar="MODELYARD_COMMANDS_DIR",
    show_envvar=True,
    help="Command templates on the worker (the backend passes MODELYARD_RAY_COMMANDS_DIR).",
)
@click.option(
    "--inline-limit", type=int, default=16 << 20, show_default=True, help="Larger models are streamed."
)
@click.option(
    "--checkpoint-every-epochs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Write (and ship) a resumable training checkpoint every N epochs (the backend passes "
    "MODELYARD_CHECKPOINT_EVERY_EPOCHS).",
)
@click.option(
    "--checkpoint-min-interval",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="…but not more often than every this many seconds (MODELYARD_CHECKPOINT_MIN_INTERVAL_S).",
)
@click.option(
    "--timeout", "timeout_s", type=float, default=30.0, show_default=True, help="Per-call timeout (s)."
)
@click.option(
    "--retry",
    "retry_s",
    type=float,
    default=120.0,
    show_default=True,
    help="How long a call to an unreachable backend is retried (s).",
)
def ray_job_command(
    backend_url: str,
    operation_id: str,
    submission_id: str | None,
    commands_dir: Path | None,
    inline_limit: int,
    checkpoint_every_epochs: int,
    checkpoint_min_interval: float,
    timeout_s: float,
    retry_s: float,
) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout
    )
    token = os.environ.get(JOB_TOKEN_ENV, "")
    if not token:
        raise click.UsageError(f"{JOB_TOKEN_ENV} is not set: this command runs inside a job ray mode submits")
    link = BackendLink(
        backend_url, operation_id, token, timeout_s=timeout_s, retry_s=retry_s, submission_id=submission_id
    )
    workdir = Path(tempfile.mkdtemp(prefix=f"modelyard-job-{operation_id}-"))
    try:
        checkpoints = CheckpointSettings(checkpoint_every_epochs, checkpoint_min_interval)
        run_job(link, workdir, commands_dir=commands_dir, inline_limit=inline_limit, checkpoints=checkpoints)
    except JobFailedError as exc:
        _report_failure(link, exc.code, exc.message, exc.details)
        sys.exit(1)
    except Exception as exc:
        from shared.trainkit.errors import TrainkitError

        if isinstance(exc, TrainkitError):
            _report_failure(link, exc.code, exc.message, dict(exc.details))
        else:
            logger.exception("training crashed")
            _report_failure(link, "training_error", f"{type(exc).__name__}: {exc}", {})
        sys.exit(1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _report_failure(link: BackendLink, code: str, message: str, details: dict[str, Any]) -> None:
    logger.error("%s: %s", code, message)
    try:
        body = {"code": code, "message": message, "details": details}
        link.call("POST", "/failure", json=body)
    except JobFailedError as exc:  # the backend's follower reports the job as lost instead
        logger.error("could not report the failure: %s", exc.message)
