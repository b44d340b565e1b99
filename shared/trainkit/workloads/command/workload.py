"""The command workload: a user's own training program, from an operator-registered template.

Steps: ``starting`` (fresh output folder, spawn), ``running`` (output parsed into metrics and progress as
it arrives), ``collecting`` (the template's artefact globs under the output folder), ``storing`` (one
model version holding those files). The program's exit decides the outcome: 0 completes, anything else
is a :class:`CommandRunError` carrying the exit code and the last lines of output.
"""

from __future__ import annotations

import contextvars
import json
import logging
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.contracts.training import CommandSpec, TrainingRequest
from shared.trainkit.errors import (
    CommandKilledError,
    CommandRunError,
    TimeLimitError,
    TrainingCancelledError,
)
from shared.trainkit.executor.progress import Step
from shared.trainkit.executor.types import ModelArtifact, ModelRef, TrainingResult
from shared.trainkit.executor.workload import CheckpointPolicy, RunContext, Workload
from shared.trainkit.provenance import RUN_FILE
from shared.trainkit.workloads import WorkloadSettings
from shared.trainkit.workloads.command.arguments import (
    Invocation,
    build_invocation,
    check_program,
    resolved_request,
)
from shared.trainkit.workloads.command.artifacts import collect_artifacts
from shared.trainkit.workloads.command.catalog import CommandCatalog
from shared.trainkit.workloads.command.checkpoints import CheckpointKeeper, newest_command_checkpoint
from shared.trainkit.workloads.command.output import MetricHistory, MetricParser
from shared.trainkit.workloads.command.process import (
    OUTPUT_LOG,
    ProcessOutcome,
    SupervisedProcess,
    start_ticks,
    stop_group,
)
from shared.trainkit.workloads.command.template import CommandTemplate

logger = logging.getLogger(__name__)

TAIL_LINES = 50
#: Progress (and the metric rows riding on it) goes out at most this often.
PROGRESS_INTERVAL_S = 0.25
#: Output lines forwarded to the operation's log: a burst, then this many a second (all go to output.log).
LOG_BURST, LOG_RATE = 2000, 200.0
METRICS_FILE = "metrics.jsonl"
#: The run folder's record of the process group running the current attempt.
PROGRAM_FILE = "program.json"
#: The program's lines are logged as ``shared.trainkit.command.<command name>``.
PROGRAM_LOGGER = "shared.trainkit.command"
MAX_ROWS_PER_REPORT = 500


class CommandWorkload(Workload):
    kind = "command"
    checks_device = False
    steps = (
        Step("starting", 2, "Starting the program"),
        Step("running", 90, "Running"),
        Step("collecting", 4, "Collecting artefacts"),
        Step("storing", 4, "Storing the model"),
    )

    def __init__(self, request: TrainingRequest, settings: WorkloadSettings) -> None:
        super().__init__(request, settings.data_dir)
        assert request.command is not None  # guaranteed by TrainingRequest's validator
        self.spec: CommandSpec = request.command
        self.settings = settings
        self.template: CommandTemplate | None = None
        self.source: Path | None = None
        self.values: dict[str, Any] = {}
        self.dataset_path: Path | None = None

    def validate(self) -> None:
        """The template exists here, the params and dataset fit it, and its program is installed."""
        template, source = CommandCatalog(self.settings.commands_dir).get(self.spec.name)
        self.values, self.dataset_path = resolved_request(template, self.spec, self.data_dir)
        self.template, self.source = template, source
        check_program(self._invocation(Path(tempfile.gettempdir())), template, str(source))

    def _invocation(
        self, output_dir: Path, run_name: str = "run", checkpoint: Path | None = None
    ) -> Invocation:
        assert self.template is not None
        assert self.source is not None
        return build_invocation(
            self.template,
            self.source.parent.resolve(),
            self.values,
            output_dir=output_dir,
            dataset_path=self.dataset_path,
            run_name=run_name,
            checkpoint=checkpoint,
        )

    def _resume_point(self, run: RunContext) -> tuple[Path, int] | None:
        """The kept checkpoint a retry resumes from (and its step); None: from the start."""
        assert self.template is not None
        if run.resume_from is None:
            return None
        found = newest_command_checkpoint(run.resume_from) if self.template.checkpoints else None
        if found is None:  # a retry all the same: the backend replaces the lost attempt's steps
            logger.info("command %s: no checkpoint was kept; starting from the beginning", self.spec.name)
            run.tracker.report("starting", 0.0, "starting from scratch", extra={"resumed_from_epoch": 0})
            return None
        path, step = found
        logger.info("command %s: resuming from step %d (%s)", self.spec.name, step, path.name)
        run.tracker.report("starting", 0.0, f"resuming from step {step}", extra={"resumed_from_epoch": step})
        return found

    def _checkpoint_keeper(
        self, run: RunContext, output_dir: Path, watcher: _OutputWatcher
    ) -> CheckpointKeeper | None:
        """Keeps the program's checkpoints in the run's checkpoint folder (when the run has one)."""
        assert self.template is not None
        if self.template.checkpoints is None or run.checkpoint_dir is None:
            return None
        policy = run.checkpoint_policy or CheckpointPolicy()
        keeper = CheckpointKeeper(
            output_dir,
            self.template.checkpoints,
            run.checkpoint_dir,
            step=lambda: watcher.history.step,
            keep_last=policy.keep_last,
            min_interval_s=policy.min_interval_s,
            on_kept=lambda _path, _step, took: run.telemetry.record("command.checkpoint", took),
        )
        watcher.on_checkpoint = keeper.declare
        keeper.start()
        return keeper

    def input_files(self) -> list[Path]:
        if self.template is None:
            self.validate()
        path = self.dataset_path
        return [path] if path is not None and path.is_file() else []

    def source_texts(self) -> dict[str, str]:
        if self.source is None:
            return {}
        params = json.dumps(self.values, sort_keys=True, default=str)
        return {"command_template": self.source.read_text(encoding="utf-8"), "command_params": params}

    @property
    def model_name(self) -> str:
        return self.request.name or self.spec.name

    def run(self, run: RunContext) -> TrainingResult:
        started = time.perf_counter()
        run.cancel.raise_if_cancelled("starting")
        run.tracker.start("starting", f"Starting {self.spec.name}")
        if self.template is None:  # not yet validated by this run (its provenance record reads the inputs)
            self.validate()
        assert self.template is not None
        if run.run_dir is not None:
            _write_run_file(run.run_dir, self.spec.name, self.values, run.provenance)
        resume = self._resume_point(run)
        with self._output_folder(run) as output_dir:
            invocation = self._invocation(output_dir, self.model_name, resume[0] if resume else None)
            logger.info("command %s: %s (in %s)", self.spec.name, " ".join(invocation.argv), invocation.cwd)
            watcher = _OutputWatcher(self.template, self.values, run)
            keeper = self._checkpoint_keeper(run, output_dir, watcher)
            try:
                outcome = self._supervise(run, invocation, watcher)
            finally:
                if keeper is not None:
                    keeper.stop(final_look=True)
            self._record_timings(run, outcome)
            self._check_outcome(outcome, watcher, run)
            run.tracker.start("collecting")
            with run.telemetry.timer("command.collect"):
                files = collect_artifacts(output_dir, self.template.artifacts)
            run.tracker.start("storing")
            model = self._store(run, files, watcher, outcome) if files else None
            if model is None:
                self.warnings.append(
                    f"no file under the output folder matched the artefact globs {self.template.artifacts}; "
                    "no model version was stored"
                )
                logger.warning("command %s: %s", self.spec.name, self.warnings[-1])
        history = watcher.history
        result = TrainingResult(
            model=model,
            device=str(history.last.get("device", "unknown")),
            test_metrics=history.numeric_last(),
            history=list(history.rows),
            best_epoch=None,
            best_val_loss=history.best_val_loss,
            epochs_trained=0,
            stop_reason=f"exit {outcome.returncode}",
            feature_importance={},
            duration_s=round(time.perf_counter() - started, 3),
            warnings=list(self.warnings),
            command=_command_summary(self.spec.name, outcome, history, files),
            resumed_from_epoch=resume[1] if resume else 0,
        )
        run.tracker.finish(f"completed: exit 0 after {outcome.lines} lines")
        return result

    def _supervise(self, run: RunContext, invocation: Invocation, watcher: _OutputWatcher) -> ProcessOutcome:
        """Run the program to its end, its output fed to ``watcher`` (flushed when it ends)."""
        assert self.template is not None
        record = run.run_dir / PROGRAM_FILE if run.run_dir is not None else None
        if record is not None:
            _stop_previous_program(record, self.template.stop_grace_s)
        process = SupervisedProcess(
            invocation,
            stop_grace_s=self.template.stop_grace_s,
            max_runtime_s=self.template.max_runtime_s,
            on_lines=watcher.consume,
            log_path=run.run_dir / OUTPUT_LOG if run.run_dir is not None else None,
            on_start=(lambda pid: _record_program(record, pid)) if record is not None else None,
        )
        run.tracker.start("running", f"Running {self.spec.name}")
        with run.telemetry.timer("command.run"):
            try:
                outcome = process.run(run.cancel)
            except OSError as exc:
                raise CommandRunError(
                    f"command {self.spec.name!r} could not start: {exc}", program=invocation.argv[0]
                ) from exc
        watcher.flush(final=True)
        return outcome

    @contextmanager
    def _output_folder(self, run: RunContext) -> Iterator[Path]:
        """A fresh ``{output_dir}``: in the run record when there is one (kept), else a temp folder."""
        if run.run_dir is not None:
            folder = (run.run_dir / "output").resolve()  # the program runs in another folder
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            yield folder
            return
        base = self.settings.scratch_dir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="modelyard-command-", dir=base) as scratch:
            yield Path(scratch).resolve()

    def _record_timings(self, run: RunContext, outcome: ProcessOutcome) -> None:
        if outcome.first_output_s is not None:
            run.telemetry.record("command.first_output", outcome.first_output_s)
        run.telemetry.record("command.exit", outcome.duration_s, ok=outcome.returncode == 0)

    def _check_outcome(self, outcome: ProcessOutcome, watcher: _OutputWatcher, run: RunContext) -> None:
        name = self.spec.name
        details: dict[str, Any] = {"exit_code": outcome.returncode, "tail": list(watcher.tail)}
        if outcome.cancelled:
            raise TrainingCancelledError(f"command {name!r} stopped: {run.cancel.reason}", where="running")
        if outcome.timed_out:
            assert self.template is not None
            raise TimeLimitError(
                f"command {name!r} ran past its time limit of {self.template.max_runtime_s:g} s and was stopped",
                limit_s=self.template.max_runtime_s,
                **details,
            )
        if outcome.signal is not None:
            raise CommandKilledError(
                f"command {name!r} was killed by signal {outcome.signal} (not sent by modelyard: out of "
                "memory, or killed by hand?)",
                signal=outcome.signal,
                **details,
            )
        if outcome.returncode != 0:
            raise CommandRunError(
                f"command {name!r} exited with code {outcome.returncode}; the last lines of its output are "
                "in the error details and the whole output in the operation's log",
                **details,
            )

    def _store(
        self, run: RunContext, files: dict[str, Path], watcher: _OutputWatcher, outcome: ProcessOutcome
    ) -> ModelRef:
        assert self.template is not None
        request = self.request.model_dump(mode="json")
        artifact = ModelArtifact(
            strategy=self.spec.name,
            name=self.model_name,
            model_bytes=b"",
            config={"command": self.spec.model_dump(mode="json"), "params": self.values},
            metrics={"final": watcher.history.numeric_last(), "best_val_loss": watcher.history.best_val_loss},
            features={},
            metadata={"workload": self.kind, "request": request, "exit_code": outcome.returncode},
            files=files,
        )
        with run.telemetry.timer("command.store"):
            return run.sink.save(artifact)


class _OutputWatcher:
    """Consumes the program's output on the reader thread: metrics, coalesced progress, a rate-limited
    copy of the lines into the operation's log (in the caller's logging context), and the last lines."""

    def __init__(self, template: CommandTemplate, values: dict[str, Any], run: RunContext) -> None:
        self._parser = MetricParser(template.metrics)
        step_metric = template.progress.metric if template.progress else "step"
        self.history = MetricHistory(step_metric)
        total = template.progress.total if template.progress else None
        self._total = values.get(total) if isinstance(total, str) else total
        self._run = run
        # Under shared.trainkit: a service lets that tree's INFO through to the operation's log even
        # when its root logger is at WARNING; a logger of its own name would lose every line.
        self._log = logging.getLogger(f"{PROGRAM_LOGGER}.{template.name}")
        self._context = contextvars.copy_context()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._last_report = 0.0
        self._tokens = float(LOG_BURST)
        self._refill_at = time.monotonic()
        self._skipped = 0
        self._lock = threading.Lock()
        #: Told of each checkpoint the program says it wrote (path under ``{output_dir}``, step).
        self.on_checkpoint: Callable[[str, int], None] | None = None
        self._bad_checkpoint_lines_told = False

    def consume(self, lines: list[str]) -> None:
        with self._lock:
            self.history.add_many(self._parser.parse_many(lines))
            if self._parser.new_checkpoint_lines:
                self._context.run(self._hand_on_checkpoints)
            self.tail.extend(lines)
            self._context.run(self._forward, lines)
            if time.monotonic() - self._last_report >= PROGRESS_INTERVAL_S:
                self._report()

    def _hand_on_checkpoints(self) -> None:
        declared = self._parser.take_checkpoints()
        if self.on_checkpoint is not None:
            for path, step in declared:
                self.on_checkpoint(path, step)
        if self._parser.bad_checkpoint_lines and not self._bad_checkpoint_lines_told:
            self._bad_checkpoint_lines_told = True
            logger.warning(
                'a checkpoint line was ignored: it needs {"checkpoint": "<path under {output_dir}>", '
                '"step": <integer >= 0>} (further ones are ignored silently)'
            )

    def flush(self, *, final: bool = False) -> None:
        with self._lock:
            self._context.run(self._note_skipped)
            self._report(final=final)

    def _forward(self, lines: list[str]) -> None:
        now = time.monotonic()
        self._tokens = min(LOG_BURST, self._tokens + (now - self._refill_at) * LOG_RATE)
        self._refill_at = now
        shown = min(len(lines), int(self._tokens))
        self._tokens -= shown
        if shown < len(lines):
            self._skipped += len(lines) - shown
        elif self._skipped:
            self._note_skipped()
        for line in lines[:shown]:
            self._log.info("%s", line)

    def _note_skipped(self) -> None:
        if self._skipped:
            self._log.info(
                "[modelyard] %d output lines not shown here (too many too fast); all are in %s",
                self._skipped,
                OUTPUT_LOG,
            )
            self._skipped = 0

    def _report(self, *, final: bool = False) -> None:
        self._last_report = time.monotonic()
        rows = self.history.drain(final=final)
        if final and self._run.run_dir is not None:
            # The metric rows as kept (thinned past 10,000 rows); output.log holds every line as printed.
            text = "".join(json.dumps(row) + "\n" for row in self.history.rows)
            (self._run.run_dir / METRICS_FILE).write_text(text, encoding="utf-8")
        if len(rows) > MAX_ROWS_PER_REPORT:  # the service keeps a thinned history; the file has them all
            stride = -(-len(rows) // MAX_ROWS_PER_REPORT)
            rows = [*rows[:-1:stride], rows[-1]]
        step = self.history.step
        total = self._total if isinstance(self._total, int) and self._total > 0 else None
        fraction = min(step / total, 1.0) if step is not None and total else 0.0
        message = (
            f"step {step}/{total}" if step is not None and total else (f"step {step}" if step else "running")
        )
        extra: dict[str, Any] = {"metric_rows": rows} if rows else {}
        if "device" in self.history.last:
            extra["device"] = str(self.history.last["device"])
        self._run.tracker.report(
            "running", fraction, message, metrics=self.history.numeric_last(), extra=extra
        )


def _record_program(record: Path, pid: int) -> None:
    """Which process group runs this attempt: a later attempt of the same run stops it if it outlived
    its supervisor (a backend killed with -9 cannot stop the programs it started)."""
    try:
        record.write_text(json.dumps({"pid": pid, "start_ticks": start_ticks(pid)}), encoding="utf-8")
    except OSError as exc:
        logger.warning("could not record the program's pid in %s: %s", record, exc)


def _stop_previous_program(record: Path, grace_s: float) -> None:
    try:
        previous = json.loads(record.read_text(encoding="utf-8"))
        pid, ticks = int(previous["pid"]), previous.get("start_ticks")
    except (OSError, ValueError, KeyError, TypeError):
        return
    if ticks is None or start_ticks(pid) != ticks:
        return  # gone (the number may now be another process's), or not provably the same program
    stopped = stop_group(pid, grace_s)
    if stopped:
        logger.warning(
            "the previous attempt's program (pid %d) was still running; stopped %d process(es)", pid, stopped
        )


def _command_summary(
    name: str, outcome: ProcessOutcome, history: MetricHistory, files: dict[str, Path]
) -> dict[str, Any]:
    return {
        "name": name,
        "exit_code": outcome.returncode,
        "lines": outcome.lines,
        "lines_with_metrics": history.lines_with_metrics,
        "log_truncated": outcome.log_truncated,
        "leftover_processes_stopped": outcome.leftovers_stopped,
        "artifacts": sorted(files),
        "last_metrics": history.numeric_last(),
        "step": history.step,
    }


def _write_run_file(run_dir: Path, command: str, values: dict[str, Any], provenance: dict[str, Any]) -> None:
    """run.json of a command run: the command, its params and what it was made from (atomically)."""
    record = {"command": command, "params": values, "started_at": time.time(), **provenance}
    temp = run_dir / f".{RUN_FILE}.tmp"
    temp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str), encoding="utf-8")
    temp.replace(run_dir / RUN_FILE)
