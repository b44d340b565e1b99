"""Standard-Webhooks-like signing: good, bad, stale, rotated, tampered, missing."""

from __future__ import annotations

import pytest

from shared.contracts.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    verify,
)

BODY = b'{"operation_id":"op_1"}'
NOW = 1_700_000_000


def test_signed_body_verifies() -> None:
    headers = sign("s3cret", BODY, timestamp=NOW)
    verify(["s3cret"], headers, BODY, now=NOW)


def test_signature_matches_the_standard_webhooks_construction() -> None:
    import base64
    import hashlib
    import hmac

    headers = sign("s3cret", BODY, msg_id="msg_1", timestamp=NOW)
    expected = base64.b64encode(hmac.new(b"s3cret", b"msg_1.1700000000." + BODY, hashlib.sha256).digest())
    assert headers[SIGNATURE_HEADER] == "v1," + expected.decode()


def test_wrong_secret_is_rejected_as_bad_signature() -> None:
    headers = sign("other", BODY, timestamp=NOW)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(["s3cret"], headers, BODY, now=NOW)


def test_tampered_body_is_rejected() -> None:
    headers = sign("s3cret", BODY, timestamp=NOW)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(["s3cret"], headers, BODY.replace(b"op_1", b"op_2"), now=NOW)


def test_tampered_id_is_rejected() -> None:
    headers = sign("s3cret", BODY, timestamp=NOW)
    headers[ID_HEADER] = "msg_other"
    with pytest.raises(SignatureError, match="bad signature"):
        verify(["s3cret"], headers, BODY, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_outside_tolerance_is_stale(offset: int) -> None:
    headers = sign("s3cret", BODY, timestamp=NOW + offset)
    with pytest.raises(SignatureError, match="stale"):
        verify(["s3cret"], headers, BODY, now=NOW)


def test_timestamp_at_the_edge_of_tolerance_is_accepted() -> None:
    verify(["s3cret"], sign("s3cret", BODY, timestamp=NOW - 300), BODY, now=NOW)


def test_rotation_accepts_any_configured_secret() -> None:
    old_signed = sign("old", BODY, timestamp=NOW)
    verify(["new", "old"], old_signed, BODY, now=NOW)


def test_several_signatures_in_one_header_are_accepted_when_one_matches() -> None:
    headers = sign(["new", "old"], BODY, timestamp=NOW)
    assert len(headers[SIGNATURE_HEADER].split(" ")) == 2
    verify(["old"], headers, BODY, now=NOW)


@pytest.mark.parametrize("missing", [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_named(missing: str) -> None:
    headers = sign("s3cret", BODY, timestamp=NOW)
    del headers[missing]
    with pytest.raises(SignatureError, match=f"missing header {missing}"):
        verify(["s3cret"], headers, BODY, now=NOW)


def test_headers_are_looked_up_case_insensitively() -> None:
    headers = {k.upper(): v for k, v in sign("s3cret", BODY, timestamp=NOW).items()}
    verify(["s3cret"], headers, BODY, now=NOW)


def test_non_integer_timestamp_is_rejected() -> None:
    headers = sign("s3cret", BODY, timestamp=NOW)
    headers[TIMESTAMP_HEADER] = "yesterday"
    with pytest.raises(SignatureError, match="not an integer"):
        verify(["s3cret"], headers, BODY, now=NOW)


def test_signing_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign([], BODY)
