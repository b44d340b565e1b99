"""The wire error shape ``{"error": {"code", "message", "details"}}``, framework-free.

Both services build their error bodies here, name invalid request fields the same way
(``body.overrides.epochs``), and turn details into JSON values; the FastAPI handlers that call this live in
each service's ``api`` package.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first error of a pydantic validation: its dotted location (``overrides.epochs``; "" at the
    top) and its message, the two parts every refusal of bad input names."""
    first = exc.errors()[0]
    return ".".join(str(part) for part in first.get("loc", ())), str(first.get("msg", "invalid"))


class CodedError(Exception):
    """An error with a stable wire ``code``, a human ``message`` and ``details`` naming what is at fault."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def field_path(loc: Sequence[Any]) -> str:
    """``body.request.overrides.epochs``: a pydantic error location as both services name fields."""
    return ".".join(str(part) for part in loc)


#: What a wire pattern allows, in words: a regex in a 422 says it to few users.
_PATTERN_RULES: dict[str, str] = {}


def describe_pattern(pattern: str, rule: str) -> None:
    """Say ``rule`` (e.g. "1-64 lower-case letters …") when a value does not match ``pattern``."""
    _PATTERN_RULES[pattern] = rule


def field_message(error: Mapping[str, Any]) -> str:
    """Pydantic's message, except for NaN/infinity, which no bound check describes truthfully, and for
    a pattern described with :func:`describe_pattern`."""
    value = error.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    rule = _PATTERN_RULES.get(str(error.get("ctx", {}).get("pattern")))
    if error.get("type") == "string_pattern_mismatch" and rule:
        shown = value if not isinstance(value, str) or len(value) <= 64 else value[:64] + "…"
        return f"{shown!r} is not allowed: use {rule}"
    return str(error.get("msg", ""))


def validation_error_body(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The 422 body for pydantic request errors: malformed JSON, or the first bad field plus all of them."""
    if any(e.get("type") == "json_invalid" for e in errors):
        problem = errors[0].get("ctx", {}).get("error", "invalid JSON")
        return error_body("malformed_json", f"the request body is not valid JSON: {problem}")
    fields = [
        {"field": field_path(e.get("loc", ())), "message": field_message(e), "type": e.get("type", "")}
        for e in errors
    ]
    first = fields[0] if fields else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(fields) > 1:
        message += f" (and {len(fields) - 1} more)"
    return error_body("validation_error", message, {"field": first["field"], "errors": fields})


def json_details(value: Any, text: Callable[[str], str] = str) -> Any:
    """``value`` as JSON: containers recursively (sets sorted), non-finite floats and other objects as
    text passed through ``text`` (which may hide server paths or bound the length)."""
    if isinstance(value, dict):
        return {str(k): json_details(v, text) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [json_details(v, text) for v in items]
    if isinstance(value, bool | int | None):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return text(str(value))
