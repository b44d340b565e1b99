"""The TrainingEngine port backed by trainkit's TrainingExecutor, built once per backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.executor.types import ModelSink, ProgressCallback, TrainingResult
from shared.trainkit.executor.workload import CheckpointPolicy


class ExecutorEngine:
    def __init__(
        self,
        data_dir: Path,
        sink: ModelSink,
        *,
        runs_dir: Path | None,
        plugin_allowlist: Sequence[str] = (),
        commands_dir: Path | None = None,
        checkpoint_every_epochs: int = 1,
        checkpoint_min_interval_s: float = 30.0,
    ) -> None:
        checkpoints = (
            CheckpointPolicy(checkpoint_every_epochs, checkpoint_min_interval_s) if runs_dir else None
        )
        self._executor = TrainingExecutor(
            data_dir,
            sink,
            run_root=runs_dir,
            plugin_allowlist=plugin_allowlist,
            commands_dir=commands_dir,
            checkpoints=checkpoints,
        )

    def validate(self, request: TrainingRequest) -> list[str]:
        return self._executor.validate(request)

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
        resume: bool = False,
    ) -> TrainingResult:
        return self._executor.execute(request, progress, cancel, run_name=run_name, resume=resume)
