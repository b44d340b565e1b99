"""ModelStorage: layout, queries, integrity, deletion, archives and name safety."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.trainkit.errors import ConfigError, ModelNotFoundError, StorageError
from shared.trainkit.executor.types import ModelArtifact, ModelSink, StagedModel
from shared.trainkit.storage import ModelStorage

FIXED_TIME = datetime(2025, 1, 5, 12, 0, tzinfo=UTC)


def artifact(
    name: str = "EURUSD_1h", strategy: str = "trend", payload: bytes = b"weights", accuracy: float = 0.5
) -> ModelArtifact:
    return ModelArtifact(
        strategy=strategy,
        name=name,
        model_bytes=payload,
        config={"hidden": [8]},
        metrics={"accuracy": accuracy},
        features={"names": ["rsi", "sma"]},
        metadata={"device": "cpu", "operation_id": "op-1"},
    )


@pytest.fixture
def store(tmp_path: Path) -> ModelStorage:
    return ModelStorage(tmp_path / "models", clock=lambda: FIXED_TIME)


def test_model_storage_is_a_model_sink(store: ModelStorage) -> None:
    sink: ModelSink = store
    assert sink.save(artifact()).version == 1


def test_save_writes_every_file_in_a_versioned_folder(store: ModelStorage) -> None:
    ref = store.save(artifact(payload=b"\x00\x01model"))
    folder = store.root / "trend" / "EURUSD_1h_v1"
    assert ref.as_dict() == {"strategy": "trend", "name": "EURUSD_1h", "version": 1, "path": str(folder)}
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "features.json",
        "metadata.json",
        "metrics.json",
        "model.safetensors",
    ]
    assert (folder / "model.safetensors").read_bytes() == b"\x00\x01model"
    assert json.loads((folder / "features.json").read_text()) == {"names": ["rsi", "sma"]}


def test_metadata_records_version_time_and_checksum_of_every_other_file(store: ModelStorage) -> None:
    store.save(artifact(payload=b"abc"))
    metadata = store.load_json("trend", "EURUSD_1h", 1, "metadata")
    assert metadata["version"] == 1
    assert metadata["device"] == "cpu"
    assert metadata["created_at"] == FIXED_TIME.isoformat()
    assert set(metadata["files"]) == {"model.safetensors", "config.json", "metrics.json", "features.json"}
    assert metadata["files"]["model.safetensors"] == {"sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3}


def test_a_staged_model_file_is_moved_in_under_the_sha256_it_was_checked_against(
    store: ModelStorage, tmp_path: Path
) -> None:
    received = tmp_path / "ingest" / "model.weights"
    received.parent.mkdir()
    received.write_bytes(b"\x00\x01received")
    digest = hashlib.sha256(b"\x00\x01received").hexdigest()
    staged = StagedModel(received, digest, len(b"\x00\x01received"))
    store.save(replace(artifact(payload=b""), staged_model=staged))

    folder = store.version_dir("trend", "EURUSD_1h", 1)
    assert (folder / "model.safetensors").read_bytes() == b"\x00\x01received"
    assert not received.exists()  # taken over, not copied
    metadata = store.load_json("trend", "EURUSD_1h", 1, "metadata")
    assert metadata["files"]["model.safetensors"] == {"sha256": digest, "size": 10}
    store.verify("trend", "EURUSD_1h", 1)


def test_versions_increase_and_latest_is_a_relative_symlink_to_the_newest(store: ModelStorage) -> None:
    refs = [store.save(artifact()) for _ in range(3)]
    assert [r.version for r in refs] == [1, 2, 3]
    link = store.root / "trend" / "EURUSD_1h_latest"
    assert link.is_symlink()
    assert os.readlink(link) == "EURUSD_1h_v3"
    assert (link / "model.safetensors").read_bytes() == b"weights"


def test_list_versions_is_newest_first_with_metrics_and_sizes(store: ModelStorage) -> None:
    store.save(artifact(accuracy=0.6))
    store.save(artifact(accuracy=0.7, payload=b"x" * 100))
    versions = store.list_versions("trend", "EURUSD_1h")
    assert [(v.version, v.is_latest, v.metrics) for v in versions] == [
        (2, True, {"accuracy": 0.7}),
        (1, False, {"accuracy": 0.6}),
    ]
    folder = Path(versions[0].path)
    assert versions[0].size_bytes == sum(p.stat().st_size for p in folder.iterdir())
    assert versions[0].created_at == FIXED_TIME
    assert versions[0].as_dict()["created_at"] == FIXED_TIME.isoformat()


def test_get_version_without_number_returns_the_latest(store: ModelStorage) -> None:
    store.save(artifact())
    store.save(artifact())
    assert store.get_version("trend", "EURUSD_1h").version == 2
    assert store.get_version("trend", "EURUSD_1h", 1).is_latest is False


def test_list_models_summarises_each_model(store: ModelStorage) -> None:
    store.save(artifact())
    store.save(artifact())
    store.save(artifact(name="GBPUSD_4h", strategy="meanrev"))
    summaries = [s.as_dict() for s in store.list_models()]
    assert summaries == [
        {
            "strategy": "meanrev",
            "name": "GBPUSD_4h",
            "latest_version": 1,
            "versions": 1,
            "updated_at": FIXED_TIME.isoformat(),
        },
        {
            "strategy": "trend",
            "name": "EURUSD_1h",
            "latest_version": 2,
            "versions": 2,
            "updated_at": FIXED_TIME.isoformat(),
        },
    ]


def test_empty_store_lists_nothing(tmp_path: Path) -> None:
    assert ModelStorage(tmp_path / "absent").list_models() == []


def test_read_file_and_version_dir_give_the_stored_bytes(store: ModelStorage) -> None:
    store.save(artifact(payload=b"pt-bytes"))
    assert store.read_file("trend", "EURUSD_1h", 1, "model.safetensors") == b"pt-bytes"
    assert store.version_dir("trend", "EURUSD_1h", 1) == store.root / "trend" / "EURUSD_1h_v1"


def test_load_json_accepts_names_with_or_without_suffix_and_rejects_others(store: ModelStorage) -> None:
    store.save(artifact())
    assert store.load_json("trend", "EURUSD_1h", 1, "config.json") == {"hidden": [8]}
    with pytest.raises(ConfigError) as caught:
        store.load_json("trend", "EURUSD_1h", 1, "model.safetensors")
    assert caught.value.details["field"] == "which"


@pytest.mark.parametrize(
    ("call", "expected_words"),
    [
        (lambda s: s.list_versions("nostrategy", "EURUSD_1h"), ["nostrategy", "trend"]),
        (lambda s: s.list_versions("trend", "USDJPY_1d"), ["USDJPY_1d", "EURUSD_1h"]),
        (lambda s: s.get_version("trend", "EURUSD_1h", 7), ["version 7", "1, 2"]),
        (lambda s: s.read_file("trend", "EURUSD_1h", 1, "nope.bin"), ["nope.bin", "model.safetensors"]),
        (lambda s: s.delete("trend", "EURUSD_1h", 9), ["version 9"]),
    ],
)
def test_unknown_model_raises_not_found_saying_what_exists(
    store: ModelStorage, call: Callable[[ModelStorage], object], expected_words: list[str]
) -> None:
    store.save(artifact())
    store.save(artifact())
    with pytest.raises(ModelNotFoundError) as caught:
        call(store)
    for word in expected_words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("strategy", ".."),
        ("strategy", "../outside"),
        ("strategy", "/etc"),
        ("name", "a/b"),
        ("name", ".hidden"),
        ("name", "x..y"),
        ("name", ""),
        ("name", "a" * 101),
        ("name", "sp ace"),
    ],
)
def test_unsafe_names_are_rejected_naming_the_field(store: ModelStorage, field: str, value: str) -> None:
    bad = artifact(name=value) if field == "name" else artifact(strategy=value)
    with pytest.raises(ConfigError) as caught:
        store.save(bad)
    assert caught.value.details["field"] == field
    with pytest.raises(ConfigError):
        store.list_versions(bad.strategy, bad.name)
    assert not any(store.root.parent.glob("outside*"))


def test_read_file_rejects_a_filename_escaping_the_version(store: ModelStorage) -> None:
    store.save(artifact())
    with pytest.raises(ConfigError) as caught:
        store.read_file("trend", "EURUSD_1h", 1, "../EURUSD_1h_v1/model.safetensors")
    assert caught.value.details["field"] == "filename"


def test_names_with_version_like_suffixes_do_not_mix_models(store: ModelStorage) -> None:
    store.save(artifact(name="a"))
    store.save(artifact(name="a_v1"))
    store.save(artifact(name="a_v1"))
    assert [v.version for v in store.list_versions("trend", "a")] == [1]
    assert [v.version for v in store.list_versions("trend", "a_v1")] == [2, 1]


def test_verify_passes_on_an_intact_version(store: ModelStorage) -> None:
    store.save(artifact())
    store.verify("trend", "EURUSD_1h", 1)


@pytest.mark.parametrize("filename", ["model.safetensors", "metrics.json"])
def test_verify_names_a_tampered_file(store: ModelStorage, filename: str) -> None:
    store.save(artifact())
    path = store.version_dir("trend", "EURUSD_1h", 1) / filename
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError) as caught:
        store.verify("trend", "EURUSD_1h", 1)
    assert caught.value.details["file"] == filename
    assert "corrupt" in str(caught.value)


def test_verify_names_a_missing_and_an_unexpected_file(store: ModelStorage) -> None:
    store.save(artifact())
    folder = store.version_dir("trend", "EURUSD_1h", 1)
    (folder / "features.json").unlink()
    with pytest.raises(StorageError, match=r"features\.json is missing"):
        store.verify("trend", "EURUSD_1h", 1)
    (folder / "features.json").write_text("{}")
    (folder / "extra.bin").write_bytes(b"?")
    with pytest.raises(StorageError, match=r"unexpected file extra\.bin"):
        store.verify("trend", "EURUSD_1h", 1)


def test_delete_of_latest_repoints_to_highest_remaining(store: ModelStorage) -> None:
    for _ in range(3):
        store.save(artifact())
    store.delete("trend", "EURUSD_1h", 3)
    assert os.readlink(store.root / "trend" / "EURUSD_1h_latest") == "EURUSD_1h_v2"
    assert [v.version for v in store.list_versions("trend", "EURUSD_1h")] == [2, 1]
    assert not any(p.name.startswith(".trash") for p in (store.root / "trend").iterdir())


def test_delete_of_last_version_removes_the_pointer_and_the_model(store: ModelStorage) -> None:
    store.save(artifact())
    store.delete("trend", "EURUSD_1h", 1)
    assert not (store.root / "trend" / "EURUSD_1h_latest").is_symlink()
    assert store.list_models() == []
    with pytest.raises(ModelNotFoundError):
        store.get_version("trend", "EURUSD_1h")


def test_version_numbers_are_never_reused_after_delete(store: ModelStorage) -> None:
    store.save(artifact())
    store.save(artifact())
    store.delete("trend", "EURUSD_1h", 2)
    store.delete("trend", "EURUSD_1h", 1)
    assert store.save(artifact()).version == 3


def test_archive_streams_a_zip_of_every_file(store: ModelStorage) -> None:
    store.save(artifact(payload=os.urandom(3 * 1024 * 1024)))
    chunks = list(store.archive("trend", "EURUSD_1h", 1))
    assert len(chunks) > 1  # streamed, not produced in one piece
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        names = sorted(archive.namelist())
        model = archive.read("EURUSD_1h_v1/model.safetensors")
    assert names == [
        f"EURUSD_1h_v1/{f}" for f in sorted(os.listdir(store.version_dir("trend", "EURUSD_1h", 1)))
    ]
    assert model == store.read_file("trend", "EURUSD_1h", 1, "model.safetensors")


def test_write_archive_writes_to_a_binary_file(store: ModelStorage, tmp_path: Path) -> None:
    store.save(artifact())
    out = tmp_path / "download.zip"
    with out.open("wb") as handle:
        written = store.write_archive("trend", "EURUSD_1h", 1, handle)
    assert written == out.stat().st_size
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("EURUSD_1h_v1/metrics.json")) == {"accuracy": 0.5}


def test_archive_of_unknown_version_fails_before_streaming(store: ModelStorage) -> None:
    store.save(artifact())
    with pytest.raises(ModelNotFoundError):
        store.archive("trend", "EURUSD_1h", 2)


def test_numpy_values_in_metrics_are_stored_as_plain_json(store: ModelStorage) -> None:
    np = pytest.importorskip("numpy")
    store.save(replace(artifact(), metrics={"loss": np.float32(0.25), "cm": np.eye(2, dtype=np.int64)}))
    assert store.load_json("trend", "EURUSD_1h", 1, "metrics") == {"loss": 0.25, "cm": [[1, 0], [0, 1]]}


def test_unserialisable_metrics_are_a_config_error(store: ModelStorage) -> None:
    with pytest.raises(ConfigError) as caught:
        store.save(replace(artifact(), metrics={"bad": object()}))
    assert caught.value.details["field"] == "metrics.json"
    assert not (store.root / "trend").exists() or not any((store.root / "trend").glob("EURUSD_1h_v*"))
