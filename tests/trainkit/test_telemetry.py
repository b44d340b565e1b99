"""Scoped timers: events on every exit path, exact rollups, a background JSONL writer that never blocks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from shared.trainkit.rollups import DurationRollup
from shared.trainkit.telemetry import Telemetry


class ScriptedClock:
    """Returns the given readings one after the other."""

    def __init__(self, readings: Iterable[float]) -> None:
        self._readings = iter(readings)

    def __call__(self) -> float:
        return next(self._readings)


def _clock_for(durations: Iterable[float]) -> ScriptedClock:
    """Readings such that consecutive timers measure ``durations``."""
    readings: list[float] = []
    for i, duration in enumerate(durations):
        readings += [100.0 * i, 100.0 * i + duration]
    return ScriptedClock(readings)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_timer_emits_a_failed_event_when_its_block_raises_and_reraises(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    telemetry = Telemetry(path, clock=_clock_for([0.25]), wall=lambda: 1_700_000_000.0)
    with pytest.raises(KeyError), telemetry.timer("step", step="indicators", attempt=2):
        raise KeyError("boom")
    telemetry.close()

    assert _lines(path) == [
        {
            "name": "step",
            "start": 1_700_000_000.0,
            "duration_s": 0.25,
            "ok": False,
            "error": "KeyError",
            "step": "indicators",
            "attempt": 2,
        }
    ]
    assert telemetry.rollups()["step"]["count"] == 1


def test_rollups_match_hand_computed_values() -> None:
    telemetry = Telemetry(clock=_clock_for([4.0, 1.0, 10.0, 3.0]))
    for _ in range(4):
        with telemetry.timer("step"):
            pass
    telemetry.record("step", 2.0)
    telemetry.record("exit", 0.5, ok=False, error="CalledProcessError")

    # sorted durations 1, 2, 3, 4, 10: p95 sits at position 3.8, i.e. 4 + 0.8 * (10 - 4)
    assert telemetry.rollups() == {
        "exit": {
            "count": 1,
            "total_s": 0.5,
            "mean_s": 0.5,
            "p50_s": 0.5,
            "p95_s": 0.5,
            "max_s": 0.5,
            "dropped": 0,
        },
        "step": {
            "count": 5,
            "total_s": 20.0,
            "mean_s": 4.0,
            "p50_s": 3.0,
            "p95_s": 8.8,
            "max_s": 10.0,
            "dropped": 0,
        },
    }


def test_rollups_round_to_microseconds() -> None:
    telemetry = Telemetry(clock=_clock_for([1 / 3]))
    with telemetry.timer("step"):
        pass
    assert telemetry.rollups()["step"]["mean_s"] == 0.333333


def test_file_holds_one_line_per_event_after_close(tmp_path: Path) -> None:
    path = tmp_path / "run" / "telemetry.jsonl"  # the run folder need not exist yet
    with Telemetry(path) as telemetry:
        for i in range(30):
            with telemetry.timer("epoch", epoch=i):
                pass
            telemetry.record("first_output", 0.01, command="train.sh")
    lines = _lines(path)
    assert len(lines) == 60
    assert [line["epoch"] for line in lines if line["name"] == "epoch"] == list(range(30))
    assert all(line["ok"] is True and line["error"] is None and line["duration_s"] >= 0 for line in lines)
    assert telemetry.dropped == 0


def test_concurrent_timers_from_several_threads_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    telemetry = Telemetry(path)
    threads_n, per_thread = 8, 500

    def work(worker: int) -> None:
        for i in range(per_thread):
            with telemetry.timer(f"worker{worker % 2}", worker=worker, i=i):
                pass

    threads = [threading.Thread(target=work, args=(w,)) for w in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    telemetry.close()

    rollups = telemetry.rollups()
    assert {name: stats["count"] for name, stats in rollups.items()} == {"worker0": 2000, "worker1": 2000}
    lines = _lines(path)
    assert len(lines) == threads_n * per_thread
    assert len({(line["worker"], line["i"]) for line in lines}) == threads_n * per_thread
    assert telemetry.dropped == 0


def test_full_queue_drops_events_from_the_file_but_counts_them_in_rollups(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    telemetry = Telemetry(path, max_queue=2)
    writer_queue = telemetry._writer._queue  # type: ignore[union-attr]
    # stall the writer thread (as a hung disk would) from its next read of the queue on
    gate = threading.Event()
    original = writer_queue.get

    def stalled_get(*args: Any, **kwargs: Any) -> object:
        assert gate.wait(10)
        return original(*args, **kwargs)

    writer_queue.get = stalled_get  # type: ignore[method-assign]
    for _ in range(6):
        with telemetry.timer("step"):
            pass
    telemetry.record("other", 1.0)
    # at most one event reached the thread already waiting on the queue; two more fit the queue
    assert telemetry.rollups()["step"]["dropped"] >= 3
    gate.set()
    telemetry.close()

    rollups = telemetry.rollups()
    assert rollups["step"]["count"] == 6
    assert (rollups["other"]["count"], rollups["other"]["dropped"]) == (1, 1)
    written = _lines(path)
    assert len(written) + telemetry.dropped == 7
    assert sum(stats["dropped"] for stats in rollups.values()) == telemetry.dropped


def test_events_after_close_count_in_rollups_and_as_dropped(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    telemetry = Telemetry(path)
    telemetry.record("spawn", 0.1)
    telemetry.close()
    telemetry.close()  # idempotent
    telemetry.record("exit", 0.2)

    assert [line["name"] for line in _lines(path)] == ["spawn"]
    assert telemetry.rollups()["exit"]["count"] == 1
    assert telemetry.rollups()["exit"]["dropped"] == 1


def test_a_failed_writer_counts_every_event_as_dropped_and_keeps_the_rollups(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    telemetry = Telemetry(blocker / "telemetry.jsonl")
    for _ in range(5):
        with telemetry.timer("step"):
            pass
    telemetry.close()
    assert telemetry.rollups()["step"]["count"] == 5
    assert telemetry.dropped == 5


def test_without_a_path_there_are_rollups_and_no_file(tmp_path: Path) -> None:
    telemetry = Telemetry.disabled()
    with telemetry.timer("step"):
        pass
    telemetry.close()
    assert telemetry.rollups()["step"]["count"] == 1
    assert list(tmp_path.iterdir()) == []


def test_attributes_may_not_shadow_the_event_fields() -> None:
    telemetry = Telemetry()
    with pytest.raises(ValueError, match="ok"), telemetry.timer("step", ok=False):
        pass
    with pytest.raises(ValueError, match="start"):
        telemetry.record("step", 1.0, start=0.0)
    assert telemetry.rollups() == {}


def test_duration_rollup_keeps_a_bounded_sample_and_exact_count_total_and_max() -> None:
    rollup = DurationRollup(max_samples=100)
    values = [i / 10_000 for i in range(10_000)]
    for value in values:
        rollup.add(value)
    stats = rollup.as_dict()
    assert len(rollup.samples) == 100
    assert stats["count"] == 10_000
    assert stats["total_s"] == round(sum(values), 6)
    assert stats["max_s"] == 0.9999
    assert 0.35 < stats["p50_s"] < 0.65  # estimated from a uniform sample
