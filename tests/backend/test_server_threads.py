"""The serving process favours its event loop: in-process trainings get one torch thread fewer than the
cores unless MODELYARD_LOCAL_TRAINING_THREADS says otherwise, and a waiting thread gets the GIL sooner."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import torch

from backend.server import SWITCH_INTERVAL_S, hand_over_the_gil_sooner, share_cores
from backend.settings import Settings
from shared.trainkit.cores import available_cores


@pytest.fixture(autouse=True)
def torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # the other tests of this process must not inherit it


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (16, 15)])
def test_trainings_get_one_thread_fewer_than_the_cores_by_default(
    settings: Settings, cores: int, threads: int
) -> None:
    assert share_cores(settings, cores=cores) == threads
    assert torch.get_num_threads() == threads


def test_the_setting_decides_when_given(settings: Settings) -> None:
    settings.local_training_threads = 3
    assert share_cores(settings, cores=2) == 3
    assert torch.get_num_threads() == 3


def test_the_cores_are_those_the_process_may_run_on() -> None:
    assert available_cores() == len(os.sched_getaffinity(0))


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_LOCAL_TRAINING_THREADS", "2")
    assert Settings().local_training_threads == 2
    monkeypatch.setenv("MODELYARD_LOCAL_TRAINING_THREADS", "0")
    with pytest.raises(ValueError, match="local_training_threads"):
        Settings()


def test_the_gil_is_handed_over_within_the_shorter_interval() -> None:
    before = sys.getswitchinterval()
    try:
        hand_over_the_gil_sooner()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert before > SWITCH_INTERVAL_S
    finally:
        sys.setswitchinterval(before)
