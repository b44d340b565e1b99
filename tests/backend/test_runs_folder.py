"""Backends on one database must share one runs folder: each marks it with its instance id before it
registers, and a backend that finds a live backend's marker missing says which one and what to set."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from backend.services.runs_folder import (
    MARKERS,
    check_shared_runs_folder,
    mark_runs_folder,
    unmark_runs_folder,
)


def test_backends_sharing_the_runs_folder_see_each_others_markers_and_say_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for instance in ("bk_a", "bk_b"):
        mark_runs_folder(tmp_path, instance)
    with caplog.at_level(logging.WARNING):
        assert check_shared_runs_folder(tmp_path, "bk_b", {"bk_a", "bk_b"}, stale_after_s=15) == []
    assert caplog.text == ""


def test_a_live_backend_writing_into_another_runs_folder_is_named_with_the_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mark_runs_folder(theirs, "bk_a")
    mark_runs_folder(mine, "bk_b")
    with caplog.at_level(logging.WARNING):
        assert check_shared_runs_folder(mine, "bk_b", {"bk_a", "bk_b"}, stale_after_s=15) == ["bk_a"]
    assert "backend bk_a shares this database but not this runs folder" in caplog.text
    assert "MODELYARD_RUNS_DIR" in caplog.text


def test_markers_of_backends_gone_for_longer_than_the_lease_are_removed_fresh_ones_stay(
    tmp_path: Path,
) -> None:
    for instance in ("bk_gone", "bk_starting", "bk_me"):
        mark_runs_folder(tmp_path, instance)
    old = time.time() - 60
    os.utime(tmp_path / MARKERS / "bk_gone", (old, old))
    # bk_starting marked before it registered: not alive yet, but young.
    check_shared_runs_folder(tmp_path, "bk_me", {"bk_me"}, stale_after_s=15)
    assert sorted(p.name for p in (tmp_path / MARKERS).iterdir()) == ["bk_me", "bk_starting"]
    unmark_runs_folder(tmp_path, "bk_me")
    assert sorted(p.name for p in (tmp_path / MARKERS).iterdir()) == ["bk_starting"]
