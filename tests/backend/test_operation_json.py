"""The poll path's body cache: one mapping and serialization per change of an operation, not per request."""

from __future__ import annotations

import json
from dataclasses import replace

from backend.api.views import OperationJson, operation_view
from backend.domain.operations import Operation, OperationStatus
from tests.backend.test_operation_domain import make_op


def _running(op_id: str = "op_1") -> Operation:
    return replace(make_op(OperationStatus.RUNNING), id=op_id)


def test_the_body_is_the_operation_view_and_is_reused_while_the_operation_is_unchanged() -> None:
    bodies = OperationJson()
    op = _running()
    first = bodies.body(op)
    assert json.loads(first) == json.loads(operation_view(op).model_dump_json())
    assert bodies.body(op) is first


def test_a_changed_operation_gets_a_new_body_even_when_equal_fields_repeat() -> None:
    bodies = OperationJson()
    op = _running()
    first = bodies.body(op)
    moved = replace(op, device="cuda")
    assert json.loads(bodies.body(moved))["device"] == "cuda"
    assert bodies.body(op) is not first  # an older object is served fresh, never a newer one's body
    assert json.loads(bodies.body(op))["device"] is None


def test_only_the_most_recently_polled_operations_are_kept() -> None:
    bodies = OperationJson(max_entries=2)
    a, b, c = _running("op_a"), _running("op_b"), _running("op_c")
    kept_a = bodies.body(a)
    kept_b = bodies.body(b)
    assert bodies.body(a) is kept_a  # a is now the most recent
    bodies.body(c)  # evicts b, the least recently polled
    assert bodies.body(a) is kept_a
    assert bodies.body(b) is not kept_b
