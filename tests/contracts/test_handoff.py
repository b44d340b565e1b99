"""The result payload's model encoding: round trip, checksums, limits, the external reference."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from shared.contracts.handoff import (
    EXTERNAL_ENCODING,
    INLINE_ENCODING,
    HandoffError,
    ModelDigest,
    build_payload,
    decode_inline_model,
    describe_model_external,
    encode_model_inline,
    payload_bytes,
)
from shared.contracts.host import ResultPayload


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    # Several read chunks, with compressible and incompressible stretches.
    path.write_bytes(os.urandom(1_000_000) + bytes(900_000) + os.urandom(123))
    return path


def test_inline_model_round_trips_byte_for_byte(model_file: Path) -> None:
    model = encode_model_inline(model_file, level=1)
    assert model["encoding"] == INLINE_ENCODING
    assert model["size"] == model_file.stat().st_size
    assert model["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert decode_inline_model(model, max_size=10_000_000) == model_file.read_bytes()


def test_inline_data_is_standard_gzip_then_base64(model_file: Path) -> None:
    model = encode_model_inline(model_file, level=6)
    assert gzip.decompress(base64.b64decode(model["data"])) == model_file.read_bytes()


def test_checksum_mismatch_is_rejected(model_file: Path) -> None:
    model = encode_model_inline(model_file)
    model["sha256"] = "0" * 64
    with pytest.raises(HandoffError, match="sha256"):
        decode_inline_model(model, max_size=10_000_000)


def test_declared_size_above_limit_is_rejected_before_decoding(model_file: Path) -> None:
    model = encode_model_inline(model_file)
    with pytest.raises(HandoffError, match="declares"):
        decode_inline_model(model, max_size=1000)


def test_a_small_body_cannot_inflate_past_the_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "zeros"
    bomb.write_bytes(bytes(5_000_000))
    model = encode_model_inline(bomb, level=9)
    assert len(model["data"]) < 20_000
    model["size"] = 100  # a lying size must not open the gate
    with pytest.raises(HandoffError, match="limit"):
        decode_inline_model(model, max_size=1_000_000)


def test_broken_base64_is_rejected(model_file: Path) -> None:
    model = encode_model_inline(model_file)
    model["data"] = "!!!" + model["data"][3:]
    with pytest.raises(HandoffError, match="gzip\\+base64"):
        decode_inline_model(model, max_size=10_000_000)


def test_truncated_stream_is_rejected(model_file: Path) -> None:
    model = encode_model_inline(model_file)
    model["data"] = model["data"][: len(model["data"]) // 2 // 4 * 4]
    with pytest.raises(HandoffError, match="truncated"):
        decode_inline_model(model, max_size=10_000_000)


def test_external_model_carries_url_digest_and_size(model_file: Path) -> None:
    model = describe_model_external(model_file, "/training/result/hs_1/model")
    assert model == {
        "encoding": EXTERNAL_ENCODING,
        "url": "/training/result/hs_1/model",
        "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        "size": model_file.stat().st_size,
    }


def test_streamed_digest_detects_extra_and_missing_bytes() -> None:
    data = b"weights" * 100
    digest = ModelDigest(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    digest.update(data[:300])
    with pytest.raises(HandoffError, match="has 300 bytes"):
        digest.verify()
    digest.update(data[300:])
    digest.verify()
    with pytest.raises(HandoffError, match="longer"):
        digest.update(b"x")


def test_payload_parses_as_the_wire_schema(model_file: Path) -> None:
    artifact = {
        "strategy": "s",
        "name": "EURUSD_1h",
        "config": {},
        "metrics": {},
        "features": {},
        "metadata": {},
    }
    body = payload_bytes(
        build_payload(
            operation_id="op_1",
            session_id="hs_1",
            result={"device": "cpu"},
            artifact=artifact,
            model=encode_model_inline(model_file),
        )
    )
    parsed = ResultPayload.model_validate(json.loads(body))
    assert parsed.model.encoding == INLINE_ENCODING
    assert parsed.operation_id == "op_1"
