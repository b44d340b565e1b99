"""SupervisedProcess on real programs: outcomes, cancel, SIGKILL after the grace, leftovers, time limit,
silence and floods of output. Every wait has a deadline; stopped means no pid of the group runs."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.trainkit.cancellation import CancelToken
from shared.trainkit.workloads.command.arguments import Invocation
from shared.trainkit.workloads.command.process import ProcessOutcome, SupervisedProcess, group_members
from tests.trainkit.command_programs import RssSampler, alive, write_program

#: Starts two children in its own process group (they share its stdout), reports every pid, then waits.
FAMILY = """
    import signal, subprocess, sys, time
    if "--ignore-term" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = [sys.executable, "-c", "import signal, sys, time\\n"
             "if len(sys.argv) > 1: signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
             "time.sleep(120)"]
    extra = ["x"] if "--ignore-term" in sys.argv else []
    kids = [subprocess.Popen(child + extra) for _ in range(2)]
    print("PIDS", *[p.pid for p in kids], flush=True)
    if "--exit" in sys.argv:
        sys.exit(0)
    time.sleep(120)
"""


class Lines:
    """Collects delivered lines (reader thread) and waits, with a deadline, for one to appear."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._seen = threading.Condition()

    def __call__(self, lines: list[str]) -> None:
        with self._seen:
            self.lines.extend(lines)
            self._seen.notify_all()

    def wait_for(self, prefix: str, deadline_s: float = 10.0) -> str:
        with self._seen:
            found = self._seen.wait_for(
                lambda: any(line.startswith(prefix) for line in self.lines), timeout=deadline_s
            )
            assert found, f"no line starting with {prefix!r} within {deadline_s} s; got {self.lines[-5:]}"
            return next(line for line in self.lines if line.startswith(prefix))


def _process(
    tmp_path: Path, body: str, *args: str, sink: Callable[[list[str]], None] | None = None, **kwargs: object
) -> SupervisedProcess:
    write_program(tmp_path, "prog.py", body)
    options: dict[str, object] = {"stop_grace_s": 5.0, "max_runtime_s": 30.0, **kwargs}
    return SupervisedProcess(
        Invocation(argv=[sys.executable, "prog.py", *args], cwd=tmp_path, env={}),
        on_lines=sink or (lambda lines: None),
        **options,  # type: ignore[arg-type]
    )


class Background:
    """``process.run(cancel)`` on a thread; ``result()`` waits for it with a deadline."""

    def __init__(self, process: SupervisedProcess) -> None:
        self.process = process
        self.cancel = CancelToken()
        self.outcome: ProcessOutcome | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.outcome = self.process.run(self.cancel)

    def result(self, deadline_s: float) -> ProcessOutcome:
        self._thread.join(deadline_s)
        assert not self._thread.is_alive(), f"the supervisor did not return within {deadline_s} s"
        assert self.outcome is not None
        return self.outcome


def _assert_all_gone(pgid: int, pids: list[int]) -> None:
    assert group_members(pgid) == []
    survivors = [pid for pid in [pgid, *pids] if alive(pid)]
    assert survivors == []


def test_a_program_exiting_0_completes_with_its_lines_counted(tmp_path: Path) -> None:
    lines = Lines()
    process = _process(tmp_path, "print('step: 1 loss: 0.5')\nprint('done')\n", sink=lines)
    outcome = process.run(CancelToken())
    assert outcome.returncode == 0
    assert (outcome.cancelled, outcome.timed_out, outcome.signal) == (False, False, None)
    assert outcome.lines == 2
    assert lines.lines == ["step: 1 loss: 0.5", "done"]
    assert outcome.first_output_s is not None
    assert 0 <= outcome.first_output_s <= outcome.duration_s
    assert outcome.leftovers_stopped == 0


def test_a_program_exiting_3_reports_exit_code_3_and_stderr_in_order(tmp_path: Path) -> None:
    lines = Lines()
    body = "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr, flush=True)\nsys.exit(3)\n"
    outcome = _process(tmp_path, body, sink=lines).run(CancelToken())
    assert outcome.returncode == 3
    assert outcome.signal is None
    assert lines.lines == ["out", "err"]


def test_a_program_that_exits_at_once_printing_nothing_completes_without_output(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    outcome = _process(tmp_path, "pass\n", log_path=log).run(CancelToken())
    assert (outcome.returncode, outcome.lines, outcome.first_output_s) == (0, 0, None)
    assert log.read_text() == ""


def test_the_output_log_holds_each_line_while_the_program_still_runs(tmp_path: Path) -> None:
    lines = Lines()
    log = tmp_path / "output.log"
    body = "import time\nprint('step: 1 loss: 0.5', flush=True)\ntime.sleep(60)\n"
    running = Background(_process(tmp_path, body, sink=lines, log_path=log, stop_grace_s=1.0))
    lines.wait_for("step: 1")
    try:
        assert log.read_text().endswith(" step: 1 loss: 0.5\n")
    finally:
        running.cancel.cancel("test")
        running.result(5.0)


def test_a_program_that_cannot_start_raises_oserror(tmp_path: Path) -> None:
    process = SupervisedProcess(
        Invocation(argv=[str(tmp_path / "absent")], cwd=tmp_path, env={}),
        stop_grace_s=1.0,
        max_runtime_s=None,
        on_lines=lambda lines: None,
    )
    with pytest.raises(FileNotFoundError):
        process.run(CancelToken())


def test_the_template_env_reaches_the_program(tmp_path: Path) -> None:
    lines = Lines()
    process = _process(tmp_path, "import os\nprint(os.environ['RUN_TAG'])\n", sink=lines)
    process.invocation = Invocation(process.invocation.argv, tmp_path, {"RUN_TAG": "tag-7"})
    assert process.run(CancelToken()).returncode == 0
    assert lines.lines == ["tag-7"]


def test_cancel_mid_run_stops_every_process_of_the_group_within_the_grace(tmp_path: Path) -> None:
    lines = Lines()
    grace = 2.0
    running = Background(_process(tmp_path, FAMILY, sink=lines, stop_grace_s=grace))
    pids = [int(p) for p in lines.wait_for("PIDS").split()[1:]]
    pgid = running.process.pid
    assert pgid is not None
    assert sorted(group_members(pgid)) == sorted([pgid, *pids])
    started = time.monotonic()
    running.cancel.cancel("test")
    outcome = running.result(grace + 5)
    elapsed = time.monotonic() - started
    assert outcome.cancelled
    assert outcome.returncode == -signal.SIGTERM
    assert elapsed <= grace + 1.0
    _assert_all_gone(pgid, pids)


def test_a_program_ignoring_sigterm_is_sigkilled_after_the_grace(tmp_path: Path) -> None:
    lines = Lines()
    grace = 0.5
    running = Background(_process(tmp_path, FAMILY, "--ignore-term", sink=lines, stop_grace_s=grace))
    pids = [int(p) for p in lines.wait_for("PIDS").split()[1:]]
    pgid = running.process.pid
    assert pgid is not None
    started = time.monotonic()
    running.cancel.cancel("test")
    outcome = running.result(grace + 5)
    elapsed = time.monotonic() - started
    assert outcome.cancelled
    assert outcome.returncode == -signal.SIGKILL
    assert grace <= elapsed <= grace + 1.0
    _assert_all_gone(pgid, pids)


def test_children_left_behind_by_a_program_that_exits_are_stopped(tmp_path: Path) -> None:
    lines = Lines()
    process = _process(tmp_path, FAMILY, "--exit", sink=lines)
    started = time.monotonic()
    outcome = process.run(CancelToken())
    elapsed = time.monotonic() - started
    pids = [int(p) for p in lines.wait_for("PIDS", deadline_s=0).split()[1:]]
    assert outcome.returncode == 0
    assert outcome.leftovers_stopped == 2
    assert process.pid is not None
    _assert_all_gone(process.pid, pids)
    assert elapsed < 5.0  # the children held the output pipe open: it must not wait for their sleep


def test_children_ignoring_sigterm_left_behind_are_sigkilled(tmp_path: Path) -> None:
    lines = Lines()
    process = _process(tmp_path, FAMILY, "--exit", "--ignore-term", sink=lines, stop_grace_s=0.5)
    outcome = process.run(CancelToken())
    pids = [int(p) for p in lines.wait_for("PIDS", deadline_s=0).split()[1:]]
    assert outcome.leftovers_stopped == 2
    assert process.pid is not None
    _assert_all_gone(process.pid, pids)


def test_a_program_that_never_ends_is_stopped_at_its_max_runtime(tmp_path: Path) -> None:
    lines = Lines()
    process = _process(tmp_path, FAMILY, sink=lines, max_runtime_s=1.0, stop_grace_s=1.0)
    started = time.monotonic()
    outcome = process.run(CancelToken())
    elapsed = time.monotonic() - started
    pids = [int(p) for p in lines.wait_for("PIDS", deadline_s=0).split()[1:]]
    assert outcome.timed_out
    assert not outcome.cancelled
    assert outcome.returncode == -signal.SIGTERM
    assert 1.0 <= elapsed <= 1.0 + 1.0
    assert process.pid is not None
    _assert_all_gone(process.pid, pids)


def test_a_silent_program_ignoring_sigterm_past_its_max_runtime_is_sigkilled(tmp_path: Path) -> None:
    body = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)\n"
    process = _process(tmp_path, body, max_runtime_s=0.5, stop_grace_s=0.5)
    started = time.monotonic()
    outcome = process.run(CancelToken())
    assert outcome.timed_out
    assert outcome.returncode == -signal.SIGKILL
    assert outcome.lines == 0
    assert time.monotonic() - started <= 0.5 + 0.5 + 1.0


def test_a_program_flooding_its_output_keeps_the_log_capped_and_memory_bounded(tmp_path: Path) -> None:
    body = """
        import sys
        block = (b"x" * 1023 + b"\\n") * 1024
        for _ in range(300):
            sys.stdout.buffer.write(block)
        print("the end")
    """
    counted = [0]

    def count(lines: list[str]) -> None:
        counted[0] += len(lines)

    log = tmp_path / "output.log"
    cap = 1 << 20
    process = _process(tmp_path, body, sink=count, log_path=log, log_max_bytes=cap)
    with RssSampler() as rss:
        started = time.monotonic()
        outcome = process.run(CancelToken())
        took = time.monotonic() - started
    assert outcome.returncode == 0
    assert outcome.lines == counted[0] == 300 * 1024 + 1
    assert outcome.log_truncated
    size = log.stat().st_size
    assert cap - 100_000 <= size <= cap + 200
    assert (
        log.read_text()
        .splitlines()[-1]
        .endswith("output log size limit reached; later lines are not kept here")
    )
    assert rss.growth_mb < 50, f"RSS grew {rss.growth_mb:.0f} MB reading 300 MB"
    print(f"300 MB of output read in {took:.2f} s; RSS growth {rss.growth_mb:.1f} MB")
