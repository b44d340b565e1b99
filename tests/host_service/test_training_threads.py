"""A host's trainings use one torch thread fewer than the cores unless MODELYARD_HOST_TRAINING_THREADS
says otherwise (the backend's in-process trainings do the same)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from host_service.adapters.worker_process import ForkServerWorkerLauncher
from host_service.settings import HostSettings
from shared.trainkit.cores import default_training_threads


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (8, 7)])
def test_default_leaves_a_core_and_never_goes_below_one(cores: int, threads: int) -> None:
    assert default_training_threads(cores) == threads


def test_setting_reaches_the_launcher_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_HOST_TRAINING_THREADS", "3")
    settings = HostSettings()
    assert settings.training_threads == 3
    launcher = ForkServerWorkerLauncher(threads=settings.training_threads, keep_idle=False)
    assert launcher.threads == 3
    assert ForkServerWorkerLauncher(keep_idle=False).threads == default_training_threads()
    monkeypatch.setenv("MODELYARD_HOST_TRAINING_THREADS", "0")
    with pytest.raises(ValidationError, match="training_threads"):
        HostSettings()
