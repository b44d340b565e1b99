"""Signing: Standard Webhooks v1 messages, signed requests and responses; good, bad, stale, rotated,
tampered, missing, misplaced; whsec_ and plain secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from shared.contracts.signing import (
    ID_HEADER,
    REQUEST_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    SignedMessage,
    check_secrets,
    secret_key,
    sign,
    sign_request,
    sign_response,
    verify,
    verify_request,
    verify_response,
)

BODY = b'{"operation_id":"op_1"}'
NOW = 1_700_000_000


def test_signed_body_verifies() -> None:
    headers = sign("s3cret", BODY, timestamp=NOW)
    verify(["s3cret"], headers, BODY, now=NOW)


def test_signature_matches_the_standard_webhooks_construction() -> None:
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


# --- secrets: whsec_<base64> or plain text -----------------------------------------------------

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_whsec_secret_keys_with_its_decoded_bytes() -> None:
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    assert secret_key(WHSEC) == key
    headers = sign(WHSEC, BODY, msg_id="msg_1", timestamp=NOW)
    expected = base64.b64encode(hmac.new(key, b"msg_1.1700000000." + BODY, hashlib.sha256).digest())
    assert headers[SIGNATURE_HEADER] == "v1," + expected.decode()


def test_an_unpadded_whsec_secret_is_accepted() -> None:
    padded = "whsec_" + base64.b64encode(b"sixteen-byte-key!").decode()
    assert padded.endswith("=")
    assert secret_key(padded.rstrip("=")) == secret_key(padded) == b"sixteen-byte-key!"


def test_a_plain_secret_keys_with_its_utf8_bytes() -> None:
    assert secret_key("pässword") == "pässword".encode()


@pytest.mark.parametrize("bad", ["whsec_not base64!", "whsec_", ""])
def test_an_unusable_secret_is_refused_saying_why(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        check_secrets([bad])


# --- requests: method, path with query, body ----------------------------------------------------


def test_a_signed_request_verifies_on_its_own_method_and_target() -> None:
    headers = sign_request("s3cret", "POST", "/training/stop/hs_1?x=1", b"", timestamp=NOW)
    message = verify_request(["s3cret"], headers, "POST", "/training/stop/hs_1?x=1", b"", now=NOW)
    assert message == SignedMessage(headers[ID_HEADER], NOW)


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/training/result/hs_1/ack", b""),
        ("GET", "/training/stop/hs_1?x=1", b""),
        ("POST", "/training/stop/hs_1?x=2", b""),
        ("POST", "/training/stop/hs_1", b""),
        ("POST", "/training/stop/hs_1?x=1", b"{}"),
    ],
    ids=["another path", "another method", "another query", "no query", "another body"],
)
def test_a_signed_request_is_invalid_anywhere_else(method: str, target: str, body: bytes) -> None:
    headers = sign_request("s3cret", "POST", "/training/stop/hs_1?x=1", b"", timestamp=NOW)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_request(["s3cret"], headers, method, target, body, now=NOW)


def test_a_request_signed_the_old_way_names_the_missing_header_and_the_upgrade() -> None:
    with pytest.raises(SignatureError, match=r"missing header modelyard-request-signature.*upgrade both"):
        verify_request(["s3cret"], sign("s3cret", b"", timestamp=NOW), "GET", "/health", b"", now=NOW)


def test_a_request_signature_is_no_webhook_signature() -> None:
    headers = sign_request("s3cret", "POST", "/x", BODY, msg_id="msg_1", timestamp=NOW)
    as_webhook = {**headers, SIGNATURE_HEADER: headers[REQUEST_SIGNATURE_HEADER]}
    with pytest.raises(SignatureError, match="bad signature"):
        verify(["s3cret"], as_webhook, BODY, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301], ids=["stale", "future"])
def test_a_request_outside_the_tolerance_is_refused(offset: int) -> None:
    headers = sign_request("s3cret", "GET", "/health", timestamp=NOW + offset)
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify_request(["s3cret"], headers, "GET", "/health", b"", now=NOW)


# --- responses: bound to their request, over the body's sha256 ----------------------------------

SHA = hashlib.sha256(BODY).hexdigest()


def test_a_signed_response_verifies_for_its_request() -> None:
    headers = sign_response("s3cret", "msg_req", "GET", "/training/result/hs_1", SHA, timestamp=NOW)
    verify_response(["s3cret"], headers, "msg_req", "GET", "/training/result/hs_1", SHA, now=NOW)


@pytest.mark.parametrize(
    ("request_id", "target", "sha256", "reason"),
    [
        ("msg_other", "/training/result/hs_1", SHA, "not the id of the request"),
        ("msg_req", "/training/result/hs_2", SHA, "bad signature"),
        ("msg_req", "/training/result/hs_1", "0" * 64, "bad signature"),
    ],
    ids=["another request", "another path", "another body"],
)
def test_a_signed_response_is_refused_for_anything_else(
    request_id: str, target: str, sha256: str, reason: str
) -> None:
    headers = sign_response("s3cret", "msg_req", "GET", "/training/result/hs_1", SHA, timestamp=NOW)
    with pytest.raises(SignatureError, match=reason):
        verify_response(["s3cret"], headers, request_id, "GET", target, sha256, now=NOW)


def test_an_unsigned_response_names_the_missing_header() -> None:
    with pytest.raises(SignatureError, match="missing header modelyard-response-signature"):
        verify_response(["s3cret"], {}, "msg_req", "GET", "/training/result/hs_1", SHA, now=NOW)


# --- rotation ------------------------------------------------------------------------------------


def test_rotation_mixes_whsec_and_plain_secrets() -> None:
    headers = sign_request([WHSEC, "old"], "GET", "/health", timestamp=NOW)
    verify_request(["old"], headers, "GET", "/health", b"", now=NOW)
    verify_request([WHSEC], headers, "GET", "/health", b"", now=NOW)
