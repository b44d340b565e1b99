"""The shared wire error shape: body, validation field paths, JSON-safe details, the coded base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from host_service.errors import HostServiceError
from shared.contracts.errors import (
    CodedError,
    describe_pattern,
    error_body,
    json_details,
    validation_error_body,
)
from shared.trainkit.errors import ConfigError


def test_error_body_defaults_details_to_an_empty_object() -> None:
    assert error_body("not_found", "no such thing") == {
        "error": {"code": "not_found", "message": "no such thing", "details": {}}
    }


def test_validation_body_names_the_first_field_path_and_counts_the_rest() -> None:
    errors: list[dict[str, Any]] = [
        {"loc": ("body", "overrides", "epochs"), "msg": "too big", "type": "less_than", "input": 9},
        {"loc": ("body", "name"), "msg": "missing", "type": "missing"},
    ]
    body = validation_error_body(errors)["error"]
    assert body["code"] == "validation_error"
    assert body["message"] == "body.overrides.epochs: too big (and 1 more)"
    assert body["details"]["field"] == "body.overrides.epochs"
    assert [e["field"] for e in body["details"]["errors"]] == ["body.overrides.epochs", "body.name"]


def test_validation_body_says_non_finite_input_must_be_finite() -> None:
    errors = [{"loc": ("body", "lr"), "msg": "less than 1", "type": "less_than", "input": float("nan")}]
    assert validation_error_body(errors)["error"]["message"] == "body.lr: must be a finite number"


def test_validation_body_reports_malformed_json() -> None:
    errors = [{"loc": ("body", 3), "msg": "JSON decode error", "type": "json_invalid", "ctx": {"error": "x"}}]
    body = validation_error_body(errors)["error"]
    assert (body["code"], body["message"]) == ("malformed_json", "the request body is not valid JSON: x")


def test_json_details_keeps_json_values_and_cleans_the_rest_as_text() -> None:
    details = {"path": Path("/srv/data/a.csv"), "cols": {"b", "a"}, "n": 2, "x": float("inf"), "ok": None}
    cleaned = json_details(details, lambda text: text.replace("/srv/data", "data"))
    assert cleaned == {"path": "data/a.csv", "cols": ["a", "b"], "n": 2, "x": "inf", "ok": None}


def test_service_error_roots_share_the_coded_base() -> None:
    host = HostServiceError("busy", slot=1)
    config = ConfigError("bad lr", field="lr")
    assert isinstance(host, CodedError)
    assert isinstance(config, CodedError)
    assert (str(host), host.details) == ("busy", {"slot": 1})
    assert (config.code, config.message, config.details) == ("invalid_config", "bad lr", {"field": "lr"})


def test_a_described_pattern_is_explained_in_words_not_as_a_regex() -> None:
    describe_pattern(r"^[a-z]+$", "lower-case letters")
    errors = [
        {
            "type": "string_pattern_mismatch",
            "loc": ("body", "tags", 0),
            "msg": "String should match pattern '^[a-z]+$'",
            "input": "Bad",
            "ctx": {"pattern": r"^[a-z]+$"},
        }
    ]
    body = validation_error_body(errors)["error"]
    assert body["message"] == "body.tags.0: 'Bad' is not allowed: use lower-case letters"
