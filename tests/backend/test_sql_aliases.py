"""SqlAliasRepository on SQLite and PostgreSQL: moves are atomic and each records where it came from."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from backend.adapters.db.aliases import SqlAliasRepository
from backend.adapters.db.engine import migrate
from backend.domain.aliases import AliasAction
from tests.backend.databases import DATABASES, empty_database

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    for engine in empty_database(request.param, tmp_path):
        migrate(engine)
        yield engine


def test_set_move_remove_are_recorded_in_order(engine: Engine) -> None:
    repo = SqlAliasRepository(engine)
    assert repo.set("s", "m", "production", 1, by="alice", at=AT).action is AliasAction.SET
    moved = repo.set("s", "m", "production", 2, by="bob", at=AT)
    assert (moved.action, moved.from_version, moved.to_version, moved.by) == (AliasAction.MOVED, 1, 2, "bob")
    found = repo.get("s", "m", "production")
    assert found is not None
    assert (found.version, found.set_by, found.set_at) == (2, "bob", AT)
    removed = repo.remove("s", "m", "production", by=None, at=AT)
    assert removed is not None
    assert removed.from_version == 2
    assert repo.remove("s", "m", "production", by=None, at=AT) is None
    assert [c.action for c in repo.history("s", "m")] == [
        AliasAction.REMOVED,
        AliasAction.MOVED,
        AliasAction.SET,
    ]


def test_concurrent_moves_each_record_the_version_the_other_left(engine: Engine) -> None:
    repo = SqlAliasRepository(engine)
    repo.set("s", "m", "prod", 1, by=None, at=AT)
    barrier = threading.Barrier(8)

    def move(version: int) -> None:
        barrier.wait()
        repo.set("s", "m", "prod", version, by=f"t{version}", at=AT)

    threads = [threading.Thread(target=move, args=(v,)) for v in range(2, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    history = list(reversed(repo.history("s", "m")))
    assert len(history) == 9
    # A chain: each move starts where the one before it ended, so no move was lost or interleaved.
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version
    final = repo.get("s", "m", "prod")
    assert final is not None
    assert final.version == history[-1].to_version


def test_removing_a_version_drops_only_its_aliases(engine: Engine) -> None:
    repo = SqlAliasRepository(engine)
    repo.set("s", "m", "a", 1, by=None, at=AT)
    repo.set("s", "m", "b", 1, by=None, at=AT)
    repo.set("s", "m", "c", 2, by=None, at=AT)
    assert sorted(repo.remove_version("s", "m", 1, by=None, at=AT)) == ["a", "b"]
    assert [a.alias for a in repo.of_model("s", "m")] == ["c"]
