"""The result callback is a Standard Webhooks v1 message: the official library verifies what we sign,
and we verify what it signs, with a ``whsec_`` secret used as is on both sides."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from shared.contracts.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    sign_request,
    verify,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"operation_id":"op_1","session_id":"hs_1","result":{"accuracy":0.5}}'


def test_the_official_library_verifies_what_we_sign() -> None:
    headers = sign(SECRET, BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {
        "operation_id": "op_1",
        "session_id": "hs_1",
        "result": {"accuracy": 0.5},
    }


def test_the_official_library_verifies_our_rotation_header_with_either_secret() -> None:
    old = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA=="
    headers = sign([SECRET, old], BODY)
    Webhook(SECRET).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_we_verify_what_the_official_library_signs() -> None:
    now = int(time.time())
    signed = Webhook(SECRET).sign("msg_2", datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    headers = {ID_HEADER: "msg_2", TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: signed}
    assert verify([SECRET], headers, BODY).msg_id == "msg_2"


def test_a_tampered_body_is_refused_by_both() -> None:
    headers = sign(SECRET, BODY)
    tampered = BODY.replace(b"0.5", b"0.9")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)
    with pytest.raises(SignatureError):
        verify([SECRET], headers, tampered)


def test_the_official_library_refuses_a_request_signature_as_a_webhook() -> None:
    # A signed request (here the bodyless POST /training/stop/…) is no webhook message anywhere.
    headers = sign_request(SECRET, "POST", "/training/stop/hs_1")
    as_webhook = {**headers, SIGNATURE_HEADER: headers["modelyard-request-signature"]}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b"", as_webhook)
