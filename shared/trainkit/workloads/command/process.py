"""One training program supervised as a process group: its output read as it comes, stopped for good.

The program starts in a session of its own, so its process group holds it and every child it forks.
Output (stdout and stderr merged, so in order) is read on a thread in chunks, split into lines,
timestamped into a size-capped log file and handed to ``on_lines``; reading never waits on the
consumer's work beyond one chunk, so a chatty program is never slowed by a full pipe.

Stopping: SIGTERM to the whole group, SIGKILL after ``stop_grace_s``. When the program itself ends, any
process left in its group gets the same treatment, so nothing of a run outlives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from shared.trainkit.cancellation import CancelToken
from shared.trainkit.workloads.command.arguments import Invocation
from shared.trainkit.workloads.command.output import split_lines

logger = logging.getLogger(__name__)

LineSink = Callable[[list[str]], None]
#: The whole output of a run, in its run record folder.
OUTPUT_LOG = "output.log"
_TICK_S = 0.05
_CHUNK = 1 << 16
#: How long the reader lets a trickle of output gather before reading it (well under the live view's
#: progress interval; the pipe holds 64 KiB meanwhile).
_GATHER_S = 0.02
#: Reads smaller than this are a trickle of output.
_TRICKLE = 4096
#: How long the rest of a finished program's group gets after SIGTERM before SIGKILL.
LEFTOVER_GRACE_S = 1.0


@dataclass(frozen=True)
class ProcessOutcome:
    returncode: int
    cancelled: bool
    timed_out: bool
    duration_s: float
    first_output_s: float | None
    lines: int
    log_truncated: bool
    leftovers_stopped: int

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None


class SupervisedProcess:
    def __init__(
        self,
        invocation: Invocation,
        *,
        stop_grace_s: float,
        max_runtime_s: float | None,
        on_lines: LineSink,
        log_path: Path | None = None,
        log_max_bytes: int = 256 << 20,
        clock: Callable[[], float] = time.monotonic,
        on_start: Callable[[int], None] | None = None,
    ) -> None:
        self.invocation = invocation
        self.stop_grace_s = stop_grace_s
        self.max_runtime_s = max_runtime_s
        self._on_lines = on_lines
        self._log_path = log_path
        self._log_max_bytes = log_max_bytes
        self._clock = clock
        self._on_start = on_start
        self.pid: int | None = None

    def run(self, cancel: CancelToken) -> ProcessOutcome:
        """Start, supervise to the end, stop what is left; OSError when the program cannot start."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.invocation.env}
        started = self._clock()
        proc = subprocess.Popen(
            self.invocation.argv,
            cwd=self.invocation.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        self.pid = proc.pid
        if self._on_start is not None:
            self._on_start(proc.pid)
        assert proc.stdout is not None
        reader = _OutputReader(proc.stdout, self._on_lines, self._log_path, self._log_max_bytes, self._clock)
        reader.start()
        cancelled = timed_out = False
        kill_at: float | None = None
        exited = _ExitWatch(proc)
        try:
            while True:
                returncode = exited.wait(_TICK_S)
                if returncode is not None:
                    break
                now = self._clock()
                if kill_at is None and cancel.cancelled:
                    cancelled, kill_at = True, self._terminate(proc.pid, now, "cancelled")
                elif (
                    kill_at is None and self.max_runtime_s is not None and now - started > self.max_runtime_s
                ):
                    timed_out, kill_at = True, self._terminate(proc.pid, now, "time limit")
                elif kill_at is not None and now >= kill_at:
                    _signal_group(proc.pid, signal.SIGKILL)
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            exited.close()
            leftovers = self._stop_leftovers(proc.pid, kill_at)
            reader.finish(deadline_s=2.0)
        return ProcessOutcome(
            returncode=returncode,
            cancelled=cancelled,
            timed_out=timed_out,
            duration_s=self._clock() - started,
            first_output_s=None if reader.first_output_at is None else reader.first_output_at - started,
            lines=reader.lines,
            log_truncated=reader.log_truncated,
            leftovers_stopped=leftovers,
        )

    def _terminate(self, pgid: int, now: float, why: str) -> float:
        logger.info("stopping program (pid %d, %s): SIGTERM to its process group", pgid, why)
        _signal_group(pgid, signal.SIGTERM)
        return now + self.stop_grace_s

    def _stop_leftovers(self, pgid: int, kill_at: float | None) -> int:
        """The program has ended; whatever is left of its group is stopped (SIGTERM, then SIGKILL)."""
        if kill_at is None:  # not being stopped yet: the leftovers get a short grace of their own
            stopped = stop_group(pgid, min(LEFTOVER_GRACE_S, self.stop_grace_s))
        else:  # already sent SIGTERM: the rest of the same grace, then SIGKILL
            stopped = stop_group(pgid, max(0.0, kill_at - self._clock()), already_terminated=True)
        if stopped:
            logger.warning("program left %d process(es) behind in its group; stopped them", stopped)
        return stopped


class _ExitWatch:
    """Waits for the program's exit up to a timeout in one blocking call: a pidfd (Linux) turns
    readable when the process ends. Elsewhere ``Popen.wait``'s timed wait (a short polling loop)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):  # kernels before 5.3
                self._pidfd = os.pidfd_open(proc.pid)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None when the program still runs after ``timeout`` seconds."""
        if self._pidfd is not None:
            select.select([self._pidfd], [], [], timeout)
            return self._proc.poll()
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, Linux), so a recorded pid is never mistaken for
    another process that got the same number later; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def stop_group(pgid: int, grace_s: float, *, already_terminated: bool = False) -> int:
    """SIGTERM to the process group ``pgid`` (unless ``already_terminated``), SIGKILL after ``grace_s``:
    how many live processes it held."""
    members = group_members(pgid)
    if not members:
        return 0
    if not already_terminated:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(_TICK_S)
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(members)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids in process group ``pgid``. Linux reads /proc; elsewhere a signal-0 probe
    (which also sees zombies, so it may report an already dead group as alive until they are reaped)."""
    if sys.platform.startswith("linux"):
        members = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                members.append(int(entry.name))
        return members
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    return [pgid]


class _OutputReader:
    """Reads the merged output pipe until EOF, or until told to finish (a grandchild may hold it open)."""

    def __init__(
        self,
        pipe: IO[bytes],
        on_lines: LineSink,
        log_path: Path | None,
        log_max_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self._fd = pipe.fileno()
        self._pipe = pipe
        self._on_lines = on_lines
        self._log = log_path.open("w", encoding="utf-8", buffering=1 << 16) if log_path else None
        self._log_left = log_max_bytes
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="command-output", daemon=True)
        self.first_output_at: float | None = None
        self.lines = 0
        self.log_truncated = False

    def start(self) -> None:
        self._thread.start()

    def finish(self, deadline_s: float) -> None:
        self._thread.join(deadline_s)
        self._stop.set()
        self._thread.join(1.0)
        self._pipe.close()
        if self._log is not None:
            self._log.close()

    def _read(self) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(self._fd, _CHUNK)
            if not chunk:
                break
            if self.first_output_at is None:
                self.first_output_at = self._clock()
            lines, pending = split_lines(pending, chunk)
            self._deliver(lines)
            if len(chunk) < _TRICKLE:
                # A trickle (an unbuffered program printing a line now and then): let it gather for a
                # moment rather than waking for every line. Never after a sizeable read: a chatty program
                # would fill the pipe meanwhile and block on it.
                self._stop.wait(_GATHER_S)
        self._deliver(split_lines(pending, b"", final=True)[0])

    def _deliver(self, lines: list[str]) -> None:
        if not lines:
            return
        self.lines += len(lines)
        if self._log is not None and not self.log_truncated:
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            prefix = stamp + " "
            text = prefix + ("\n" + prefix).join(lines) + "\n"
            self._log_left -= len(text)
            if self._log_left < 0:
                self.log_truncated = True
                text = f"{stamp} [modelyard] output log size limit reached; later lines are not kept here\n"
            self._log.write(text)
            self._log.flush()  # once per chunk: the log is read while the program runs
        try:
            self._on_lines(lines)
        except Exception:  # a broken consumer must not stop the draining of the pipe
            logger.exception("output consumer failed; output is still read")
