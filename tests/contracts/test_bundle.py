"""The artefact bundle: a deterministic tar on the host, unpacked on the backend trusting nothing in it."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.bundle import BundleError, check_bundle_name, pack_files, unpack_files

LIMIT = 1 << 20


def _files(tmp_path: Path) -> dict[str, Path]:
    source = tmp_path / "out"
    (source / "sub" / "deep").mkdir(parents=True)
    (source / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (source / "sub" / "deep" / "notes.txt").write_text("hello\n")
    (source / "empty.txt").write_bytes(b"")
    return {
        "weights.bin": source / "weights.bin",
        "sub/deep/notes.txt": source / "sub" / "deep" / "notes.txt",
        "empty.txt": source / "empty.txt",
    }


def _entry(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def test_packed_files_come_back_byte_for_byte_with_their_listed_digests(tmp_path: Path) -> None:
    files = _files(tmp_path)
    listed = pack_files(files, tmp_path / "artifacts.tar")
    assert listed == {name: _entry(path.read_bytes()) for name, path in files.items()}
    target = tmp_path / "unpacked"
    target.mkdir()
    extracted = unpack_files(tmp_path / "artifacts.tar", listed, target, max_bytes=LIMIT)
    assert sorted(extracted) == sorted(files)
    assert all(extracted[name].read_bytes() == files[name].read_bytes() for name in files)
    assert extracted["sub/deep/notes.txt"] == target / "sub" / "deep" / "notes.txt"


def test_packing_the_same_files_twice_gives_the_same_tar(tmp_path: Path) -> None:
    files = _files(tmp_path)
    pack_files(files, tmp_path / "a.tar")
    (tmp_path / "out" / "weights.bin").touch()  # a new mtime changes nothing
    pack_files(dict(reversed(list(files.items()))), tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


UNSAFE: dict[str, Callable[[], tarfile.TarInfo]] = {
    "parent": lambda: _member("../x"),
    "nested parent": lambda: _member("sub/../../x"),
    "absolute": lambda: _member("/etc/x"),
    "symlink": lambda: _member("x", tarfile.SYMTYPE, "/etc/passwd"),
    "hardlink": lambda: _member("x", tarfile.LNKTYPE, "weights.bin"),
    "folder": lambda: _member("x", tarfile.DIRTYPE),
    "device": lambda: _member("x", tarfile.CHRTYPE),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_an_unsafe_member_is_refused_and_nothing_lands_outside(tmp_path: Path, case: str) -> None:
    info = UNSAFE[case]()
    regular = info.isreg()
    bundle = _tar(tmp_path / "evil.tar", (info, b"pwned" if regular else None))
    target = tmp_path / "deep" / "unpacked"
    target.mkdir(parents=True)
    with pytest.raises(BundleError):
        unpack_files(bundle, {info.name: _entry(b"pwned")}, target, max_bytes=LIMIT)
    assert not (tmp_path / "deep" / "x").exists()
    assert not (tmp_path / "x").exists()
    assert not (target / "x").exists()


def test_a_member_whose_bytes_do_not_match_its_sha256_is_refused(tmp_path: Path) -> None:
    bundle = _tar(tmp_path / "b.tar", (_member("model.bin"), b"tampered"))
    listed = {"model.bin": {"sha256": hashlib.sha256(b"original").hexdigest(), "size": len(b"tampered")}}
    with pytest.raises(BundleError, match="sha256"):
        unpack_files(bundle, listed, _empty(tmp_path), max_bytes=LIMIT)


def test_files_listed_above_the_size_cap_are_refused_before_reading(tmp_path: Path) -> None:
    data = b"x" * 2048
    bundle = _tar(tmp_path / "b.tar", (_member("big.bin"), data))
    with pytest.raises(BundleError, match="above the limit"):
        unpack_files(bundle, {"big.bin": _entry(data)}, _empty(tmp_path), max_bytes=1024)


def test_a_member_longer_than_listed_is_refused(tmp_path: Path) -> None:
    data = b"x" * 2048
    bundle = _tar(tmp_path / "b.tar", (_member("big.bin"), data))
    with pytest.raises(BundleError, match="2048 bytes"):
        unpack_files(bundle, {"big.bin": _entry(data[:10])}, _empty(tmp_path), max_bytes=LIMIT)


@pytest.mark.parametrize("case", ["unlisted", "twice", "missing"])
def test_the_tar_must_hold_exactly_the_listed_files(tmp_path: Path, case: str) -> None:
    members = {
        "unlisted": [(_member("a"), b"a"), (_member("b"), b"b")],
        "twice": [(_member("a"), b"a"), (_member("a"), b"a")],
        "missing": [(_member("a"), b"a")],
    }[case]
    listed = {"a": _entry(b"a"), **({"c": _entry(b"c")} if case == "missing" else {})}
    bundle = _tar(tmp_path / "b.tar", *members)
    with pytest.raises(BundleError):
        unpack_files(bundle, listed, _empty(tmp_path), max_bytes=LIMIT)


def test_bytes_that_are_not_a_tar_are_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar"
    bundle.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BundleError, match="not a valid tar"):
        unpack_files(bundle, {"a": _entry(b"a")}, _empty(tmp_path), max_bytes=LIMIT)


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "./a", "a//b", "a\\b", "..", "a/"])
def test_a_bundle_never_packs_a_path_that_is_not_plain_and_relative(tmp_path: Path, name: str) -> None:
    with pytest.raises(BundleError):
        check_bundle_name(name)
    (tmp_path / "f").write_bytes(b"f")
    with pytest.raises(BundleError):
        pack_files({name: tmp_path / "f"}, tmp_path / "b.tar")


def _empty(tmp_path: Path) -> Path:
    target = tmp_path / "unpacked"
    target.mkdir()
    return target
