"""The command workload through the executor, on real programs: metrics, artefacts, failures, telemetry,
and a million lines of output in bounded memory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.training import CommandSpec, ProgressUpdate, TrainingRequest, Workload
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import (
    CommandKilledError,
    CommandRunError,
    TimeLimitError,
    TrainingCancelledError,
)
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.executor.types import TrainingResult
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.command.output import MetricHistory
from tests.trainkit.command_programs import RssSampler, write_command, write_program

#: Prints seed-004 lines for 30 steps, a structured validation line every 10, writes two files.
METRICS_PROGRAM = """
    import json, sys
    from pathlib import Path
    out = Path(sys.argv[sys.argv.index("--out") + 1])
    print('MODELYARD {"device": "cpu"}')
    for step in range(1, 31):
        print(f"step: {step} loss: {1 / step:.6f} lr: 0.01")
        if step % 10 == 0:
            print("MODELYARD " + json.dumps({"step": step, "val_loss": step / 100}))
    (out / "sub").mkdir()
    (out / "model.bin").write_bytes(bytes(range(256)) * 64)
    (out / "sub" / "notes.txt").write_text("trained\\n")
    (out / "ignored.log").write_text("not an artefact\\n")
"""


def _expected_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for step in range(1, 31):
        row: dict[str, Any] = {"step": step, "loss": float(f"{1 / step:.6f}"), "lr": 0.01}
        if step % 10 == 0:
            row["val_loss"] = step / 100
        rows.append(row)
    return rows


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.commands = tmp_path / "commands"
        self.data = tmp_path / "data"
        self.data.mkdir()
        self.models = tmp_path / "models"
        self.runs = tmp_path / "runs"
        self.updates: list[ProgressUpdate] = []

    def command(self, name: str, body: str, **fields: object) -> None:
        write_program(self.commands, f"{name}.py", body)
        write_command(self.commands, name, f"{name}.py", **fields)

    def executor(self) -> TrainingExecutor:
        return TrainingExecutor(
            self.data, ModelStorage(self.models), run_root=self.runs, commands_dir=self.commands
        )

    def run(
        self, name: str, cancel: CancelToken | None = None, params: dict[str, Any] | None = None
    ) -> TrainingResult:
        request = TrainingRequest(
            workload=Workload.COMMAND, command=CommandSpec(name=name, params=params or {}), name="exp"
        )
        return self.executor().execute(request, self.updates.append, cancel or CancelToken(), run_name="r1")

    def failure(self, name: str, error: type[Exception]) -> Any:
        with pytest.raises(error) as caught:
            self.run(name)
        return caught.value


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_the_metrics_history_equals_exactly_what_the_program_printed(setup: Setup) -> None:
    setup.command(
        "metrics", METRICS_PROGRAM, args=["--out", "{output_dir}"], artifacts=["*.bin", "sub/*.txt"]
    )
    result = setup.run("metrics")
    assert result.history == _expected_rows()
    written = (setup.runs / "r1" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in written] == _expected_rows()
    assert result.test_metrics == {"loss": float(f"{1 / 30:.6f}"), "lr": 0.01, "val_loss": 0.3}
    assert result.best_val_loss == 0.1
    assert result.device == "cpu"
    assert result.stop_reason == "exit 0"
    assert result.command["lines"] == 1 + 30 + 3
    assert result.command["lines_with_metrics"] == 34
    assert result.command["step"] == 30
    percentages = [u.percentage for u in setup.updates]
    assert percentages == sorted(percentages)
    assert percentages[-1] == 100.0
    sent_rows = [row for u in setup.updates for row in u.extra.get("metric_rows", [])]
    assert sent_rows == _expected_rows()


def test_artefacts_are_stored_with_the_sha256_of_the_files_the_program_wrote(setup: Setup) -> None:
    setup.command(
        "metrics", METRICS_PROGRAM, args=["--out", "{output_dir}"], artifacts=["*.bin", "sub/*.txt"]
    )
    result = setup.run("metrics")
    assert result.model is not None
    assert (result.model.strategy, result.model.name, result.model.version) == ("metrics", "exp", 1)
    version = Path(result.model.path)
    assert version == setup.models / "metrics" / "exp_v1"
    output = setup.runs / "r1" / "output"
    manifest = json.loads((version / "metadata.json").read_text())["files"]
    for relative in ("model.bin", "sub/notes.txt"):
        digest = hashlib.sha256((output / relative).read_bytes()).hexdigest()
        assert manifest[f"files/{relative}"]["sha256"] == digest
        assert (version / "files" / relative).read_bytes() == (output / relative).read_bytes()
    assert not (version / "files" / "ignored.log").exists()
    assert result.command["artifacts"] == ["model.bin", "sub/notes.txt"]


def test_no_matching_artefact_completes_with_a_warning_and_no_model(setup: Setup) -> None:
    setup.command("bare", "print('step: 1 loss: 0.5')\n", artifacts=["*.pt"])
    result = setup.run("bare")
    assert result.model is None
    assert len(result.warnings) == 1
    assert "matched the artefact globs ['*.pt']" in result.warnings[0]
    assert result.history == [{"step": 1, "loss": 0.5}]
    assert not setup.models.exists() or not any(setup.models.iterdir())


def test_exit_3_fails_with_command_failed_the_exit_code_and_the_last_50_lines(setup: Setup) -> None:
    setup.command("fails", "import sys\nfor i in range(80):\n    print(f'line {i}')\nsys.exit(3)\n")
    error = setup.failure("fails", CommandRunError)
    assert type(error) is CommandRunError
    assert error.code == "command_failed"
    assert error.details["exit_code"] == 3
    assert error.details["tail"] == [f"line {i}" for i in range(30, 80)]
    assert "exited with code 3" in error.message


def test_a_program_killed_by_its_own_sigkill_is_command_killed(setup: Setup) -> None:
    setup.command(
        "suicide", "import os, signal\nprint('bye', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    error = setup.failure("suicide", CommandKilledError)
    assert error.code == "command_killed"
    assert (error.details["signal"], error.details["exit_code"]) == (9, -9)
    assert error.details["tail"] == ["bye"]


def test_a_program_past_its_max_runtime_fails_with_time_limit(setup: Setup) -> None:
    setup.command("sleeper", "import time\nprint('going', flush=True)\ntime.sleep(60)\n", max_runtime_s=0.5)
    started = time.monotonic()
    error = setup.failure("sleeper", TimeLimitError)
    assert time.monotonic() - started < 5.0
    assert error.code == "time_limit"
    assert error.details["limit_s"] == 0.5
    assert "time limit of 0.5 s" in error.message


def test_cancel_mid_run_raises_training_cancelled_within_the_grace(setup: Setup) -> None:
    setup.command("slow", "import time\nprint('going', flush=True)\ntime.sleep(60)\n", stop_grace_s=1.0)
    cancel = CancelToken()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            setup.run("slow", cancel)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    log = setup.runs / "r1" / "output.log"
    while not (log.is_file() and "going" in log.read_text()):
        assert time.monotonic() < deadline, "the program never printed"
        time.sleep(0.02)
    started = time.monotonic()
    cancel.cancel("by test")
    thread.join(1.0 + 2.0)
    assert not thread.is_alive()
    assert time.monotonic() - started <= 1.0 + 1.0
    assert len(errors) == 1
    assert isinstance(errors[0], TrainingCancelledError)
    assert "by test" in str(errors[0])


def test_telemetry_counts_each_step_and_command_phase_once_in_the_result_and_run_summary(
    setup: Setup,
) -> None:
    setup.command("metrics", METRICS_PROGRAM, args=["--out", "{output_dir}"], artifacts=["*.bin"])
    result = setup.run("metrics")
    names = (
        "step.starting", "step.running", "step.collecting", "step.storing",
        "command.run", "command.first_output", "command.exit", "command.collect",
    )  # fmt: skip
    for name in names:
        assert result.telemetry[name]["count"] == 1, name
    summary = json.loads((setup.runs / "r1" / "run_summary.json").read_text())
    for name in names:
        assert summary["telemetry"][name]["count"] == 1, name


def test_a_million_line_program_completes_in_bounded_memory(setup: Setup, capsys: Any) -> None:
    lines = 1_000_000
    body = f"""
        import sys
        write = sys.stdout.write
        for start in range(1, {lines} + 1, 10_000):
            write("".join(f"step: {{s}} loss: {{1 / s:.6f}} lr: 0.001\\n" for s in range(start, start + 10_000)))
    """
    setup.command("chatty", body, artifacts=["*.pt"])
    with RssSampler() as rss:
        started = time.monotonic()
        result = setup.run("chatty")
        took = time.monotonic() - started
    program = setup.commands / "chatty.py"
    started = time.monotonic()
    subprocess.run([sys.executable, str(program)], stdout=subprocess.DEVNULL, check=True, timeout=60)
    alone = time.monotonic() - started
    assert result.command["lines"] == lines
    assert result.command["step"] == lines
    assert len(result.history) <= MetricHistory().max_rows
    assert result.history[-1] == {"step": lines, "loss": float(f"{1 / lines:.6f}"), "lr": 0.001}
    assert rss.growth_mb < 100, f"RSS grew {rss.growth_mb:.0f} MB"
    with capsys.disabled():
        print(
            f"\n1M lines: {took:.2f} s through the executor, {alone:.2f} s to /dev/null; "
            f"RSS growth {rss.growth_mb:.1f} MB, history {len(result.history)} rows"
        )


def test_run_json_records_the_command_template_and_params_hashes(setup: Setup) -> None:
    import hashlib

    setup.command(
        "metrics", METRICS_PROGRAM, args=["--out", "{output_dir}"], artifacts=["*.bin", "sub/*.txt"]
    )
    setup.run("metrics")
    record = json.loads((setup.runs / "r1" / "run.json").read_text())
    template = (setup.commands / "metrics.yaml").read_text()
    assert record["command"] == "metrics"
    assert record["sources"]["command_template"] == hashlib.sha256(template.encode()).hexdigest()
    assert set(record["sources"]) == {"command_template", "command_params"}
    assert record["inputs"] == []
    assert record["modelyard_version"]
