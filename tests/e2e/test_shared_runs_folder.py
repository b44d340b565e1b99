"""Backends on one database must share one runs folder (the checkpoints hosts and Ray jobs ship land there,
whichever backend received them): real backend processes on one SQLite database, one of them with a runs
folder of its own, which says at start which live backend it does not share the folder with."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.e2e.host_cluster import backend_process, start_all

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WARNING = "shares this database but not this runs folder"


def test_a_backend_with_a_runs_folder_of_its_own_names_the_backend_it_does_not_share_it_with(
    tmp_path: Path,
) -> None:
    first, sharing, apart = (backend_process(tmp_path / name, []) for name in ("first", "sharing", "apart"))
    for other in (sharing, apart):
        other.env["MODELYARD_DATABASE_URL"] = first.env["MODELYARD_DATABASE_URL"]
    sharing.env["MODELYARD_RUNS_DIR"] = first.env["MODELYARD_RUNS_DIR"]
    try:
        start_all([first])
        [first_id] = re.findall(r"backend instance (bk_\w+) registered", first.log())
        start_all([sharing])
        start_all([apart])
        assert WARNING not in first.log() + sharing.log()
        warned = [line for line in apart.log().splitlines() if WARNING in line]
        assert len(warned) == 2, warned  # the two that share the first folder, each named once
        assert any(first_id in line and "MODELYARD_RUNS_DIR" in line for line in warned), warned
    finally:
        for process in (first, sharing, apart):
            process.kill(signal.SIGKILL)
