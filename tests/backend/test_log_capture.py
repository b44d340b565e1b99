"""Per-operation logs: every logger, print() and warnings of the training's thread; nothing else."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backend.adapters.operation_logs import FileOperationLogStore
from backend.domain.ports import LogRecordLine
from backend.services.log_capture import MAX_LINE_CHARS, LogCapture


def run_in_thread(target: object) -> None:
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


@contextmanager
def installed(tmp_path: Path) -> Iterator[LogCapture]:
    """Installed inside the test itself: pytest swaps sys.stdout between a fixture and the test."""
    logs = LogCapture(FileOperationLogStore(tmp_path / "logs"))
    logs.install()
    try:
        yield logs
    finally:
        logs.uninstall()


def lines(logs: LogCapture, op_id: str) -> list[LogRecordLine]:
    return logs.store.read(op_id, 0, 1000)[0]


def test_plugin_loggers_print_and_warnings_of_the_training_thread_are_captured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the server logs at MODELYARD_LOG_LEVEL, INFO by default

    def train() -> None:
        with capture.capture("op_a"):
            logging.getLogger("my_plugin.model").info("plugin says hello")
            print("printed", "by the plugin")
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn("lr looks high", UserWarning, stacklevel=1)

    def elsewhere() -> None:
        logging.getLogger("my_plugin.model").warning("not inside an operation")
        print("a print outside any operation")

    with installed(tmp_path) as capture:
        run_in_thread(train)
        run_in_thread(elsewhere)
    captured = [(line.logger, line.message) for line in lines(capture, "op_a")]
    assert ("my_plugin.model", "plugin says hello") in captured
    assert ("stdout", "printed by the plugin") in captured
    assert any(logger == "py.warnings" and "UserWarning: lr looks high" in m for logger, m in captured)
    assert not any("outside" in message for _, message in captured)


def test_a_print_without_newline_is_kept_and_a_huge_one_is_cut_into_bounded_lines(tmp_path: Path) -> None:
    def train() -> None:
        with capture.capture("op_b"):
            print("x" * (2 * MAX_LINE_CHARS + 10), end="")
            print("tail", end="")

    with installed(tmp_path) as capture:
        run_in_thread(train)
    messages = [line.message for line in lines(capture, "op_b")]
    assert all(len(m) <= MAX_LINE_CHARS for m in messages)
    assert "".join(messages) == "x" * (2 * MAX_LINE_CHARS + 10) + "tail"


def test_uninstall_gives_back_stdout_and_the_warnings_hook(tmp_path: Path) -> None:
    import sys

    stdout, hook = sys.stdout, warnings.showwarning
    logs = LogCapture(FileOperationLogStore(tmp_path / "logs"))
    logs.install()
    assert sys.stdout is not stdout
    logs.uninstall()
    assert sys.stdout is stdout
    assert warnings.showwarning is hook
