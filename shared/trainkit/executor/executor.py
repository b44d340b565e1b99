"""TrainingExecutor: the one synchronous entry point of a training, run alike in the backend and on a host.

It never knows where it runs (in-process worker thread or host child process) nor how it was invoked,
and it names no workload's steps: it picks the workload, builds the run context (progress over the
workload's declared steps, cancellation, the model sink, the run record folder, phase telemetry) and
lets the workload run. It does know the hardware: a model workload's device is checked up front.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.devices import select_device
from shared.trainkit.errors import ConfigError, TrainkitError
from shared.trainkit.executor.progress import PipelineProgress
from shared.trainkit.executor.types import ModelSink, ProgressCallback, TrainingResult
from shared.trainkit.executor.workload import CheckpointPolicy, RunContext, Workload
from shared.trainkit.provenance import provenance
from shared.trainkit.run_record import TELEMETRY_FILE, write_telemetry_summary
from shared.trainkit.telemetry import Telemetry

logger = logging.getLogger(__name__)


class TrainingExecutor:
    """Runs one training request to completion, or raises a ``TrainkitError``.

    ``sink`` persists the model (the backend's ModelStorage, or a host's hand-off store); ``run_root``, when
    given, receives a run record folder per execution; ``plugin_allowlist`` names the module prefixes a
    plugin workload may be imported from; ``commands_dir`` is the folder of command templates;
    ``checkpoints`` (needs ``run_root``) makes model workloads write resumable training checkpoints into
    ``<run folder>/checkpoints``, which ``execute(..., resume=True)`` resumes from.
    """

    def __init__(
        self,
        data_dir: Path,
        sink: ModelSink,
        *,
        run_root: Path | None = None,
        plugin_allowlist: Sequence[str] = (),
        commands_dir: Path | None = None,
        scratch_dir: Path | None = None,
        checkpoints: CheckpointPolicy | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.sink = sink
        self.run_root = run_root
        self.plugin_allowlist = tuple(plugin_allowlist)
        self.commands_dir = commands_dir
        self.scratch_dir = scratch_dir
        self.checkpoints = checkpoints

    def workload(self, request: TrainingRequest) -> Workload:
        from shared.trainkit.workloads import WorkloadSettings, create_workload

        settings = WorkloadSettings(
            data_dir=self.data_dir,
            plugin_allowlist=self.plugin_allowlist,
            commands_dir=self.commands_dir,
            scratch_dir=self.scratch_dir,
        )
        return create_workload(request, settings)

    def validate(self, request: TrainingRequest) -> list[str]:
        """Preflight before a request is accepted: parse the configuration and check the data the way
        ``execute`` would in its data phase (dates, enough rows); raises what would fail; returns warnings.

        The device is not checked here: the request may still be routed to a host that has it."""
        workload = self.workload(request)
        workload.validate()
        return list(workload.warnings)

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
        resume: bool = False,
    ) -> TrainingResult:
        """Run ``request``; with ``resume`` a model workload continues from the newest valid training
        checkpoint of the run folder ``run_name`` (from scratch when there is none, saying so)."""
        workload = self.workload(request)
        if workload.checks_device:
            check_device(request)
        name = run_name or time.strftime("run-%Y%m%d-%H%M%S")
        run_dir = self.run_root / name if self.run_root is not None else None
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
        telemetry = Telemetry(run_dir / TELEMETRY_FILE if run_dir is not None else None)
        tracker = PipelineProgress(workload.steps, progress, telemetry=telemetry)
        checkpoint_dir = checkpoint_folder(run_dir) if run_dir is not None and self.checkpoints else None
        context = RunContext(
            tracker,
            cancel,
            self.sink,
            name,
            run_dir,
            telemetry,
            checkpoint_dir=checkpoint_dir,
            checkpoint_policy=self.checkpoints,
            resume_from=checkpoint_dir if resume else None,
            provenance=_provenance(workload, self.data_dir, run_dir),
        )
        try:
            result = workload.run(context)
        except BaseException as exc:
            tracker.close(error=type(exc).__name__)
            raise
        finally:
            telemetry.close()
            if run_dir is not None:
                _write_summary(run_dir, telemetry)
        result.telemetry = telemetry.rollups()
        return result


def checkpoint_folder(run_dir: Path) -> Path:
    """Where the training checkpoints of the run in ``run_dir`` are written."""
    return run_dir / "checkpoints"


def _provenance(workload: Workload, data_dir: Path, run_dir: Path | None) -> dict[str, Any]:
    """run.json's record of the inputs (none without a run folder: nothing would keep it); a file the
    workload cannot find is left for its data phase to report (with the rest of what it checks)."""
    if run_dir is None:
        return {}
    try:
        files = workload.input_files()
    except TrainkitError:
        files = []
    return provenance(files, workload.source_texts(), root=data_dir)


def _write_summary(run_dir: Path, telemetry: Telemetry) -> None:
    try:
        write_telemetry_summary(run_dir, telemetry.rollups())
    except OSError as exc:  # the run record is a convenience: never fail a training over it
        logger.warning("telemetry summary not written to %s: %s", run_dir, exc)


def check_device(request: TrainingRequest) -> None:
    """Fail fast when the request names a device (cuda, mps) this machine does not have."""
    wanted = request.overrides.device
    if wanted is None or wanted in ("auto", "cpu"):
        return
    try:
        select_device(wanted)
    except ConfigError as exc:
        raise ConfigError(f"overrides.device: {exc.message}", field="overrides.device", value=wanted) from exc
