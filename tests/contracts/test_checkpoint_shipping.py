"""The steps a host's and a Ray job's checkpoint shippers share: pick the newest unshipped checkpoint,
hold it open, describe the upload."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shared.contracts.checkpoint_shipping import next_checkpoint


def _write(folder: Path, name: str, body: bytes) -> Path:
    path = folder / name
    path.write_bytes(body)
    return path


def test_the_newest_checkpoint_is_picked_by_label_and_described_for_its_upload(tmp_path: Path) -> None:
    _write(tmp_path, "epoch-000002.ckpt", b"two")
    _write(tmp_path, "epoch-000010.ckpt", b"ten" * 1000)
    _write(tmp_path, ".epoch-000011.ckpt.partial", b"half")  # being written: never picked
    _write(tmp_path, "notes.txt", b"x")
    with next_checkpoint(tmp_path, None) as newest:
        assert newest is not None
        assert (newest.name, newest.label) == ("epoch-000010.ckpt", 10)
        query, size = newest.describe("sess-1")
        body = b"ten" * 1000
        assert size == len(body)
        assert query == {
            "session_id": "sess-1",
            "epoch": "10",
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": str(len(body)),
            "name": "epoch-000010.ckpt",
        }
        assert b"".join(newest.chunks()) == body  # describing left it at its start


def test_nothing_is_next_when_the_newest_was_shipped_or_the_folder_is_missing(tmp_path: Path) -> None:
    _write(tmp_path, "step-000000400-last.pt", b"400")
    with next_checkpoint(tmp_path, "step-000000400-last.pt") as newest:
        assert newest is None
    with next_checkpoint(tmp_path / "absent", None) as newest:
        assert newest is None


def test_a_checkpoint_pruned_while_it_is_shipped_still_reads_whole(tmp_path: Path) -> None:
    path = _write(tmp_path, "epoch-000003.ckpt", b"three")
    with next_checkpoint(tmp_path, "epoch-000002.ckpt") as newest:
        assert newest is not None
        path.unlink()  # the training keeps its last two: it may prune the file meanwhile
        _, size = newest.describe("s")
        assert (size, b"".join(newest.chunks())) == (5, b"three")
    assert newest.source.closed
