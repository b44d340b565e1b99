"""A training program's output as lines and metrics: the regexes of its template, and the structured form.

A line ``MODELYARD {"step": 100, "loss": 0.5}`` (one JSON object) is read as it stands and wins over the
regexes for that line; any other line is searched with each metric's regex (one capture group). A line
with metrics but no step belongs to the last step seen. A structured line naming a ``checkpoint`` is no
metric row: it says which file under ``{output_dir}`` is a complete checkpoint of which step, and is
handed on through :meth:`MetricParser.take_checkpoints`. Rows are merged per step, kept in memory up to a
bound by thinning (every other row dropped, the newest kept), so a million-line program costs bounded
memory while the full record stays on disk.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

STRUCTURED_PREFIX = "MODELYARD "
MAX_LINE_CHARS = 8192
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
#: Control bytes (tab and line ends aside) become 0xff, a byte UTF-8 never uses, so decoding with
#: "replace" shows each as one U+FFFD. Two C loops over the chunk: a regex over every line was the
#: reader's bottleneck (about 45 MB/s).
_MARK_CONTROL = bytes.maketrans(_CONTROL_BYTES, b"\xff" * len(_CONTROL_BYTES))
#: Non-numeric values a structured line may carry (shown, never plotted).
TEXT_KEYS = ("device", "phase")
#: The key of a structured line declaring a checkpoint: ``MODELYARD {"checkpoint": "last.pt", "step": 400}``.
CHECKPOINT_KEY = "checkpoint"
MAX_CHECKPOINT_PATH_CHARS = 1024


def split_lines(pending: bytes, chunk: bytes, *, final: bool = False) -> tuple[list[str], bytes]:
    """Complete lines of ``pending + chunk`` (``\r`` counts as a line end, as progress bars use it) and
    the unfinished rest. Undecodable bytes and control characters become visible replacement marks; a
    line longer than ``MAX_LINE_CHARS`` is cut."""
    data = (pending + chunk).replace(b"\r\n", b"\n").replace(b"\r", b"\n").translate(_MARK_CONTROL)
    parts = data.split(b"\n")
    rest = b"" if final else parts.pop()
    if len(rest) > 4 * MAX_LINE_CHARS:  # a line that never ends: cut it rather than grow without bound
        parts.append(rest)
        rest = b""
    if len(data) - len(rest) <= MAX_LINE_CHARS or all(len(raw) <= MAX_LINE_CHARS for raw in parts):
        # The common case, decoded once for the whole chunk: every line is short (in bytes, so in
        # characters too) and the cut is at a line end, so no character is split.
        return list(filter(None, b"\n".join(parts).decode("utf-8", errors="replace").split("\n"))), rest
    # A UTF-8 character is at most 4 bytes: cutting the bytes first never loses a kept character.
    limit = 4 * MAX_LINE_CHARS
    lines = [raw[:limit].decode("utf-8", errors="replace")[:MAX_LINE_CHARS] for raw in parts if raw]
    return lines, rest


class MetricParser:
    """Turns output lines into ``{metric: value}`` rows.

    The metric regexes are scanned as one alternation, left to right, in a single pass (each template
    regex has exactly one group, so the group that matched names the metric); the first match of each
    metric on a line wins. That is the same as searching each regex on its own unless one metric's
    matched text also holds another's.

    :meth:`parse_many` scans a whole chunk of lines in one call when every pattern is *line-safe* (it
    cannot match the NUL the lines are joined with, which the reader never lets through): the scan then
    stays in C and Python only sees the matches, which keeps the reader above 200,000 lines/s. Other
    patterns (``.``, anchors, negated classes, escapes by code) are searched line by line, with the same
    result."""

    def __init__(self, patterns: Mapping[str, str]) -> None:
        self._names = list(patterns)
        scan = re.compile("|".join(f"(?:{p})" for p in patterns.values())) if patterns else None
        self._finditer = scan.finditer if scan is not None else None
        #: Metric name by group number (0: no group took part), the separator's group last.
        self._by_group: tuple[str | None, ...] = (None, *self._names, _LINE_END)
        self._chunk_finditer = None
        if patterns and all(_line_safe(p) for p in patterns.values()):
            joined = "|".join(f"(?:{p})" for p in patterns.values())
            self._chunk_finditer = re.compile(f"{joined}|({_SEPARATOR})").finditer
        self._checkpoints: list[tuple[str, int]] = []
        #: Checkpoint lines parsed since the last :meth:`take_checkpoints` (0 almost always: a cheap test).
        self.new_checkpoint_lines = 0
        #: Checkpoint lines left out for a missing or bad path or step (the workload warns once).
        self.bad_checkpoint_lines = 0

    @property
    def scans_chunks(self) -> bool:
        """Whether :meth:`parse_many` scans a whole chunk in one call (every pattern is line-safe)."""
        return self._chunk_finditer is not None

    def parse(self, line: str) -> dict[str, Any]:
        if STRUCTURED_PREFIX in line:  # one substring search; the exact rule only for those lines
            stripped = line.lstrip()
            if stripped.startswith(STRUCTURED_PREFIX):
                data = _json_object(stripped[len(STRUCTURED_PREFIX) :])
                if data is not None and CHECKPOINT_KEY in data:
                    self._note_checkpoint(data)
                    return {}
                if data is not None:
                    return _structured(data)
        found: dict[str, Any] = {}
        finditer = self._finditer
        if finditer is None:
            return found
        names = self._names
        for match in finditer(line):
            group = match.lastindex
            if group is None:
                continue
            name = names[group - 1]
            if name not in found:
                try:
                    found[name] = float(match[group])
                except ValueError:
                    continue
        return found

    def take_checkpoints(self) -> list[tuple[str, int]]:
        """The ``(path, step)`` of the checkpoint lines parsed since the last call, in order."""
        taken, self._checkpoints = self._checkpoints, []
        self.new_checkpoint_lines = 0
        return taken

    def _note_checkpoint(self, data: dict[Any, Any]) -> None:
        self.new_checkpoint_lines += 1
        path, step = data.get(CHECKPOINT_KEY), data.get("step")
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        if (
            isinstance(path, str)
            and 0 < len(path) <= MAX_CHECKPOINT_PATH_CHARS
            and isinstance(step, int)
            and not isinstance(step, bool)
            and step >= 0
        ):
            self._checkpoints.append((path, step))
        else:
            self.bad_checkpoint_lines += 1

    def parse_many(self, lines: list[str]) -> list[dict[str, Any]]:
        """The rows of the lines that hold metrics, in order (lines without any are left out)."""
        text = _SEPARATOR.join(lines)
        finditer = self._chunk_finditer
        if finditer is None or STRUCTURED_PREFIX in text:
            return [values for values in map(self.parse, lines) if values]
        rows: list[dict[str, Any]] = []
        append = rows.append
        by_group = self._by_group
        found: dict[str, Any] = {}
        for match in finditer(text):
            group = match.lastindex or 0
            name = by_group[group]
            if name is _LINE_END:
                if found:
                    append(found)
                    found = {}
            elif name is not None and name not in found:
                try:
                    found[name] = float(match[group])
                except ValueError:
                    continue
        if found:
            rows.append(found)
        return rows


#: Joins a chunk's lines for one scan: a control byte, so :func:`split_lines` never leaves one in a line.
_SEPARATOR = "\x00"
#: What the separator's group stands for in ``MetricParser._by_group`` (compared by identity).
_LINE_END = "\x00line end"
#: What may match the separator: ``.``, anchors, negated classes and the classes of "anything not ...",
#: and escapes that name a character by its code. A pattern with none of them matches within a line.
_UNSAFE = re.compile(r"\\[SDWAZxuU0-7NP]|\[\^|(?<!\\)[.^$]")
#: Escapes that only match printable or whitespace characters (``\s``, ``\d``, ``\.``, ...).
_SAFE_ESCAPE = re.compile(r"\\[^SDWAZxuU0-7NP]")
#: A character class that is not negated and holds no escape left after those went: inside it ``.``,
#: ``^`` (not first) and ``$`` are literal characters, so it matches only what it lists.
_PLAIN_CLASS = re.compile(r"\[(?!\^)[^\]\\]*\]")


def _line_safe(pattern: str) -> bool:
    """Whether ``pattern`` can only match inside one line of the joined chunk (conservative)."""
    return _UNSAFE.search(_PLAIN_CLASS.sub("", _SAFE_ESCAPE.sub("", pattern))) is None


def _json_object(text: str) -> dict[Any, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _structured(data: dict[Any, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or len(key) > 64:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = value
        elif key in TEXT_KEYS and isinstance(value, str):
            values[key] = value[:64]
    return values


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class MetricHistory:
    """Rows ``{"step": n, metric: value, ...}`` merged per step, the last value of each metric, and a
    bounded in-memory copy (thinned when full). ``drain()`` hands out the rows finished since last time."""

    def __init__(self, step_metric: str = "step", *, max_rows: int = 10_000) -> None:
        self.step_metric = step_metric
        self.max_rows = max_rows
        self.rows: list[dict[str, Any]] = []
        self.last: dict[str, Any] = {}
        self.best_val_loss: float | None = None
        self.lines_with_metrics = 0
        self._open: dict[str, Any] | None = None
        self._unsent: list[dict[str, Any]] = []

    @property
    def step(self) -> int | None:
        value = self.last.get(self.step_metric)
        return int(value) if isinstance(value, int | float) else None

    def add(self, values: Mapping[str, Any]) -> None:
        self.add_many([dict(values)])

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        """Merge the values of consecutive lines, in order (one loop, the reader's hot path). The dicts
        are taken over: one may become a row of the history as it is."""
        last = self.last
        step_metric = self.step_metric
        unsent = self._unsent
        row = self._open
        best = self.best_val_loss
        isfinite = math.isfinite
        for values in rows:
            if not values:
                continue
            self.lines_with_metrics += 1
            last.update(values)
            val_loss = values.get("val_loss")
            if isinstance(val_loss, int | float) and isfinite(val_loss):
                best = val_loss if best is None else min(best, val_loss)
            step = values.get(step_metric)
            if step is not None:
                step = int(step)
                if row is None or row["step"] != step:
                    if row is not None and len(row) > 1:  # a step with no metric of its own: no row
                        unsent.append(row)
                    row = values  # the usual case: one line, one step
                else:
                    row.update(values)
                if step_metric != "step":
                    del row[step_metric]
                row["step"] = step
            elif row is None:
                current = last.get(step_metric)
                if not isinstance(current, int | float):
                    continue  # before any step (e.g. a start-up line): a last value, not a row
                row = {"step": int(current), **values}
            else:
                row.update(values)
            if "device" in values or "phase" in values:  # TEXT_KEYS: shown as last values, never plotted
                for key in TEXT_KEYS:
                    row.pop(key, None)
        self._open = row
        self.best_val_loss = best

    def drain(self, *, final: bool = False) -> list[dict[str, Any]]:
        """The rows finished since the last drain (with ``final``, the open one too); they join
        :attr:`rows`, which is thinned (every other older row dropped) when over ``max_rows``."""
        if final and self._open is not None:
            if len(self._open) > 1:
                self._unsent.append(self._open)
            self._open = None
        rows, self._unsent = self._unsent, []
        self.rows.extend(rows)
        while len(self.rows) > self.max_rows:
            newest = self.rows[-1]
            self.rows = [*self.rows[:-1:2], newest]
        return rows

    def numeric_last(self) -> dict[str, float]:
        """The last finite value of each numeric metric, the step counter left out."""
        return {
            k: float(v)
            for k, v in self.last.items()
            if k != self.step_metric
            and isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
        }
