"""ModelStorage under crashes and concurrency: no half-written version is ever visible, no clobbering."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from shared.trainkit.errors import ModelNotFoundError, StorageError
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.storage import ModelStorage
from shared.trainkit.storage.durable_files import (
    FSYNC_THREADS,
    fsync_all,
    write_durably,
    write_files_durably,
)

DEADLINE_S = 60.0
FILES_PER_VERSION = 5


class SimulatedCrashError(Exception):
    pass


class CrashingWriter:
    """Writes ``ok_files`` files normally, then fails (raising, or killing the process outright)."""

    def __init__(self, ok_files: int, hard: bool = False) -> None:
        self.remaining = ok_files
        self.hard = hard

    def __call__(self, path: Path, data: bytes) -> None:
        if self.remaining == 0:
            if self.hard:
                os._exit(17)  # a real crash: no except/finally runs
            raise SimulatedCrashError(f"crash before {path.name}")
        self.remaining -= 1
        write_durably(path, data)


def artifact(payload: bytes = b"weights", name: str = "EURUSD_1h") -> ModelArtifact:
    return ModelArtifact(
        strategy="trend",
        name=name,
        model_bytes=payload,
        config={},
        metrics={"payload": payload.decode()},
        features={},
        metadata={},
    )


def visible_versions(store: ModelStorage) -> list[int]:
    try:
        return [v.version for v in store.list_versions("trend", "EURUSD_1h")]
    except ModelNotFoundError:
        return []


def hidden_entries(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "trend").iterdir() if p.name.startswith((".tmp-", ".trash-")))


@pytest.mark.parametrize("ok_files", range(FILES_PER_VERSION))
def test_exception_between_files_leaves_no_version_visible(tmp_path: Path, ok_files: int) -> None:
    root = tmp_path / "models"
    ModelStorage(root).save(artifact(b"first"))
    crashing = ModelStorage(root, write_file=CrashingWriter(ok_files))
    with pytest.raises(SimulatedCrashError):
        crashing.save(artifact(b"second"))
    store = ModelStorage(root)
    assert visible_versions(store) == [1]
    assert os.readlink(root / "trend" / "EURUSD_1h_latest") == "EURUSD_1h_v1"
    assert hidden_entries(root) == []  # the failed save removed its temp folder
    assert store.save(artifact(b"third")).version == 2  # the unpublished number is given back
    assert store.read_file("trend", "EURUSD_1h", 2, "model.safetensors") == b"third"


def test_os_error_while_writing_becomes_a_storage_error(tmp_path: Path) -> None:
    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(StorageError, match="No space left"):
        ModelStorage(tmp_path, write_file=full_disk).save(artifact())
    assert visible_versions(ModelStorage(tmp_path)) == []


def _save_then_die(root: Path) -> None:
    ModelStorage(root, write_file=CrashingWriter(2, hard=True)).save(artifact(b"doomed"))


def test_killed_process_leaves_only_a_hidden_temp_folder_that_cleanup_removes(tmp_path: Path) -> None:
    root = tmp_path / "models"
    store = ModelStorage(root)
    store.save(artifact(b"first"))
    child = multiprocessing.get_context("fork").Process(target=_save_then_die, args=(root,))
    child.start()
    child.join(DEADLINE_S)
    assert child.exitcode == 17
    [temp] = hidden_entries(root)
    assert temp.startswith(".tmp-EURUSD_1h_v2-")
    assert visible_versions(store) == [1]
    assert store.get_version("trend", "EURUSD_1h").version == 1
    assert [m.versions for m in store.list_models()] == [1]

    assert store.cleanup_stale(older_than_s=3600) == []  # young: might be a save in progress
    old = time.time() - 7200
    os.utime(root / "trend" / temp, (old, old))
    assert store.cleanup_stale(older_than_s=3600) == [str(root / "trend" / temp)]
    assert hidden_entries(root) == []
    assert store.save(artifact(b"next")).version == 3  # a number claimed by a dead process stays burned


def test_cleanup_removes_trash_at_once_and_leftover_pointer_parts_once_old(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path)
    store.save(artifact())
    (tmp_path / "trend" / ".trash-EURUSD_1h_v9-abc").mkdir()
    (tmp_path / "trend" / ".trash-EURUSD_1h_v9-abc" / "model.safetensors").write_bytes(b"x")
    young_part = tmp_path / "trend" / ".EURUSD_1h_latest.young.part"
    old_part = tmp_path / "trend" / ".EURUSD_1h_latest.old.part"
    os.symlink("EURUSD_1h_v1", young_part)
    os.symlink("EURUSD_1h_v1", old_part)
    old = time.time() - 7200
    os.utime(old_part, (old, old), follow_symlinks=False)
    removed = store.cleanup_stale(older_than_s=3600)
    assert sorted(Path(p).name for p in removed) == [".EURUSD_1h_latest.old.part", ".trash-EURUSD_1h_v9-abc"]
    assert young_part.is_symlink()  # might belong to a switch in progress
    assert visible_versions(store) == [1]


def test_cleanup_repoints_a_latest_left_behind_by_a_crash(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path)
    store.save(artifact())
    store.save(artifact())
    link = tmp_path / "trend" / "EURUSD_1h_latest"
    os.symlink("EURUSD_1h_v1", tmp_path / "trend" / "stale")
    os.replace(tmp_path / "trend" / "stale", link)  # as if the crash hit between rename and switch
    assert store.get_version("trend", "EURUSD_1h").version == 1
    store.cleanup_stale()
    assert os.readlink(link) == "EURUSD_1h_v2"


def test_dangling_latest_pointer_falls_back_to_the_highest_version(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path)
    store.save(artifact())
    store.save(artifact())
    link = tmp_path / "trend" / "EURUSD_1h_latest"
    link.unlink()
    os.symlink("EURUSD_1h_v7", link)
    assert store.get_version("trend", "EURUSD_1h").version == 2
    assert [v.is_latest for v in store.list_versions("trend", "EURUSD_1h")] == [True, False]


def assert_consistent(root: Path, saved: list[tuple[int, bytes]], expected_count: int) -> None:
    store = ModelStorage(root)
    versions = sorted(v for v, _ in saved)
    assert versions == list(range(1, expected_count + 1))  # distinct, none lost
    for version, payload in saved:  # nobody's files were clobbered by another save
        assert store.read_file("trend", "EURUSD_1h", version, "model.safetensors") == payload
        store.verify("trend", "EURUSD_1h", version)
    assert os.readlink(root / "trend" / "EURUSD_1h_latest") == f"EURUSD_1h_v{expected_count}"
    assert hidden_entries(root) == []


def test_concurrent_saves_from_threads_get_distinct_versions(tmp_path: Path) -> None:
    threads_n, saves_n = 6, 5
    store = ModelStorage(tmp_path)
    barrier = threading.Barrier(threads_n, timeout=DEADLINE_S)
    saved: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        barrier.wait()
        for i in range(saves_n):
            payload = f"thread-{index}-save-{i}".encode()
            ref = store.save(artifact(payload))
            with lock:
                saved.append((ref.version, payload))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
    assert not any(thread.is_alive() for thread in threads)
    assert_consistent(tmp_path, saved, threads_n * saves_n)


def _process_saves(root: Path, index: int, saves_n: int, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    store = ModelStorage(root)
    for i in range(saves_n):
        payload = f"process-{index}-save-{i}".encode()
        results.put((store.save(artifact(payload)).version, payload))  # type: ignore[attr-defined]


def test_concurrent_saves_from_processes_get_distinct_versions(tmp_path: Path) -> None:
    processes_n, saves_n = 4, 5
    context = multiprocessing.get_context("fork")  # POSIX only, like the store's flock
    barrier = context.Barrier(processes_n, timeout=DEADLINE_S)
    results = context.Queue()
    children = [
        context.Process(target=_process_saves, args=(tmp_path, i, saves_n, barrier, results))
        for i in range(processes_n)
    ]
    for child in children:
        child.start()
    saved = [results.get(timeout=DEADLINE_S) for _ in range(processes_n * saves_n)]
    for child in children:
        child.join(DEADLINE_S)
    assert [child.exitcode for child in children] == [0] * processes_n
    assert_consistent(tmp_path, saved, processes_n * saves_n)


def test_concurrent_deletes_and_saves_keep_latest_on_the_highest_version(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path)
    for _ in range(10):
        store.save(artifact())
    errors: list[BaseException] = []

    def delete_old() -> None:
        try:
            for version in range(1, 10):
                store.delete("trend", "EURUSD_1h", version)
        except BaseException as exc:
            errors.append(exc)

    deleter = threading.Thread(target=delete_old)
    deleter.start()
    new_versions = [store.save(artifact()).version for _ in range(5)]
    deleter.join(DEADLINE_S)
    assert errors == []
    assert new_versions == [11, 12, 13, 14, 15]
    assert visible_versions(store) == [15, 14, 13, 12, 11, 10]
    assert os.readlink(tmp_path / "trend" / "EURUSD_1h_latest") == "EURUSD_1h_v15"


def test_lost_counter_is_rebuilt_from_the_folders(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path)
    store.save(artifact())
    store.save(artifact())
    (tmp_path / "trend" / ".EURUSD_1h.counter").unlink()
    assert store.save(artifact()).version == 3


def test_corrupt_counter_is_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    store = ModelStorage(tmp_path)
    store.save(artifact())
    (tmp_path / "trend" / ".EURUSD_1h.counter").write_text("garbage")
    with pytest.raises(StorageError) as caught:
        store.save(artifact())
    assert caught.value.details["file"].endswith(".EURUSD_1h.counter")


def test_a_pointer_that_cannot_be_switched_does_not_fail_a_stored_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ModelStorage(tmp_path)
    store.save(artifact())
    link = tmp_path / "trend" / "EURUSD_1h_latest"
    link.unlink()
    link.mkdir()  # something in the pointer's place that os.replace cannot overwrite
    (link / "keep").write_text("x")
    assert store.save(artifact(b"second")).version == 2
    assert "cleanup_stale repairs it" in caplog.text
    assert store.get_version("trend", "EURUSD_1h").version == 2
    assert store.read_file("trend", "EURUSD_1h", 2, "model.safetensors") == b"second"


def test_every_file_and_folder_of_a_version_is_fsynced_before_it_becomes_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fsyncs run together (on threads of their own), but all of them end before the rename publishes."""
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def rename(source: str | Path, target: str | Path) -> None:
        real_rename(source, target)
        with lock:
            events.append(("rename", str(target)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "model.pt").write_bytes(b"weights")
    (out / "sub" / "log.json").write_text("{}")
    files = {"model.pt": out / "model.pt", "sub/log.json": out / "sub" / "log.json"}
    command_artifact = dataclasses.replace(artifact(b""), strategy="toy", name="run", files=files)
    final = Path(ModelStorage(tmp_path / "models").save(command_artifact).path)
    published = events.index(("rename", str(final)))
    synced = {Path(path) for kind, path in events[:published] if kind == "fsync"}
    temp = next(p for p in synced if p.name.startswith(".tmp-"))  # the temp folder, renamed since
    expected = {temp} | {temp / p.relative_to(final) for p in final.rglob("*")}
    assert expected <= synced, sorted(str(p) for p in expected - synced)
    assert ("fsync", str(final.parent)) in events[published:]  # and the rename itself is made durable


def test_write_files_durably_writes_every_file_before_the_first_fsync_and_fsyncs_each_and_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"model.safetensors": b"weights", "config.json": b"{}", "manifest.json": b"[]"}
    synced: list[tuple[str, set[str]]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        written = {p.name for p in tmp_path.iterdir() if p.stat().st_size > 0}
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), written))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_files_durably(tmp_path, files)
    assert {Path(path).name for path, _ in synced} == {*files, tmp_path.name}  # together, in any order
    assert all(written == set(files) for _, written in synced)  # every file's bytes before any fsync
    assert {name: (tmp_path / name).read_bytes() for name in files} == files


def test_write_files_durably_never_overwrites_a_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        write_files_durably(tmp_path, {"model.safetensors": b"w", "config.json": b"new"})
    assert (tmp_path / "config.json").read_bytes() == b"kept"


def test_fsync_all_syncs_more_paths_than_it_has_threads_and_raises_the_first_error(tmp_path: Path) -> None:
    paths = [tmp_path / f"f{i}" for i in range(FSYNC_THREADS * 3)]
    for path in paths:
        path.write_bytes(b"x")
    fsync_all([*paths, tmp_path])
    with pytest.raises(FileNotFoundError):
        fsync_all([*paths, tmp_path / "missing"])
