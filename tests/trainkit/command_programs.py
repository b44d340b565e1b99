"""Throwaway training programs for the command workload tests: small Python scripts written into a
folder, and the templates that run them with ``{python}``."""

from __future__ import annotations

import os
import textwrap
import threading
from pathlib import Path

import yaml

from shared.trainkit.workloads.command.catalog import SAMPLES_DIR

#: Seed 004's line format, the default metric regexes read it.
SEED_LINE = "step: {step} loss: {loss} lr: {lr}"


def write_program(folder: Path, name: str, body: str) -> Path:
    """``folder/name`` holding ``body`` (dedented); run it as ``{python} name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def write_command(folder: Path, name: str, program: str, **fields: object) -> Path:
    """A template ``folder/name.yaml`` running ``{python} program`` (extra argv via ``args``)."""
    args = list(fields.pop("args", []))  # type: ignore[call-overload]
    template: dict[str, object] = {"name": name, "argv": ["{python}", program, *args], **fields}
    path = folder / f"{name}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def copy_samples(folder: Path) -> Path:
    """The shipped sample commands (toy.yaml, toy_train.py) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in SAMPLES_DIR.iterdir():
        if source.is_file():
            (folder / source.name).write_bytes(source.read_bytes())
    return folder


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs: ``os.kill(pid, 0)`` succeeds and it is not a zombie (an orphan killed
    after its parent ended waits as a zombie until init reaps it; it no longer runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


class RssSampler:
    """The peak resident set size of this process while the block runs, sampled from /proc every 10 ms."""

    def __init__(self) -> None:
        self.baseline = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / (1 << 20)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
