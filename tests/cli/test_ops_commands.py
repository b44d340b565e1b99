"""``modelyard ops show|list|logs`` against a FakeBackend: what they print and what they ask for."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from backend.api.operations import router as operations_router
from backend.cli.log_reader import LOG_PAGE_LINES
from backend.cli.ops_commands import MAX_LIST_LIMIT
from backend.cli.options import CliEnv
from tests.cli.conftest import Invoke
from tests.cli.fake_backend import COMPLETED_RESULT, FakeBackend, operation

SERVER = ["--server", "http://backend.test"]
LOGS = "/api/v1/operations/op-1/logs"


def env_for(fake: FakeBackend) -> CliEnv:
    return CliEnv(transport=fake.transport(), poll_interval_s=0.0)


def show(invoke: Invoke, op: dict[str, Any]) -> str:
    result = invoke(["ops", "show", "op-1", *SERVER], env=env_for(FakeBackend(operation_states=[op])))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_show_of_a_completed_operation_prints_its_model_and_metrics(invoke: Invoke) -> None:
    result = {**COMPLETED_RESULT, "best_epoch": 2, "warnings": ["only 900 rows"]}
    out = show(invoke, operation("op-1", "completed", 100.0, device="cpu", result=result))
    for expected in (
        "trend_momentum/EURUSD_1h v3",
        "models/trend_momentum/EURUSD_1h_v3",
        "test accuracy  │ 0.6100",
        "macro F1       │ 0.5500",
        "F1 BUY         │ 0.5000",
        "F1 SELL        │ 0.6000",
        "best epoch     │ 2",
        "stop reason    │ max_epochs",
        "device         │ cpu",
        "warning        │ only 900 rows",
    ):
        assert expected in out, expected
    assert out.count("device") == 1  # the operation's device, not repeated from the result


def test_show_of_a_failed_operation_prints_its_error_code_message_and_details(invoke: Invoke) -> None:
    error = {
        "code": "invalid_data",
        "message": "EURUSD_1h.csv row 12: negative close",
        "details": {"row": 12},
    }
    out = show(invoke, operation("op-1", "failed", 45.0, error=error, warnings=["few rows"]))
    assert "invalid_data: EURUSD_1h.csv row 12: negative close" in out
    assert "error row" in out
    assert "warning        │ few rows" in out
    assert "test accuracy" not in out


def test_list_limit_beyond_the_servers_maximum_is_rejected_before_any_request(invoke: Invoke) -> None:
    fake = FakeBackend()
    result = invoke(["ops", "list", "--limit", "800", *SERVER], env=env_for(fake))
    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.stderr
    assert "1<=x<=500" in result.stderr
    assert fake.requests == []


def test_cli_bounds_match_the_servers_query_bounds() -> None:
    app = FastAPI()
    app.include_router(operations_router)
    paths = app.openapi()["paths"]

    def limit_of(path: str) -> dict[str, Any]:
        [param] = [p for p in paths[path]["get"]["parameters"] if p["name"] == "limit"]
        return dict(param["schema"])

    assert limit_of("/api/v1/operations")["maximum"] == MAX_LIST_LIMIT
    assert limit_of("/api/v1/operations/{operation_id}/logs")["maximum"] >= LOG_PAGE_LINES


def test_logs_page_through_every_line(invoke: Invoke) -> None:
    fake = FakeBackend(log_messages=[f"line {i}" for i in range(2 * LOG_PAGE_LINES + 5)])
    result = invoke(["ops", "logs", "op-1", *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    assert len(printed) == 2 * LOG_PAGE_LINES + 5
    assert printed[0].endswith("trainkit: line 0")
    assert printed[-1].endswith(f"trainkit: line {2 * LOG_PAGE_LINES + 4}")
    offsets = [r.url.params["offset"] for r in fake.sent("GET", LOGS)]
    assert offsets == ["0", str(LOG_PAGE_LINES), str(2 * LOG_PAGE_LINES)]


def test_logs_tail_prints_only_the_last_lines(invoke: Invoke) -> None:
    fake = FakeBackend(log_messages=[f"line {i}" for i in range(LOG_PAGE_LINES + 10)])
    result = invoke(["ops", "logs", "op-1", "--tail", "3", *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    assert [line.split(": ", 1)[1] for line in result.stdout.splitlines()] == [
        f"line {LOG_PAGE_LINES + i}" for i in (7, 8, 9)
    ]


def test_logs_follow_prints_new_lines_until_the_operation_ends(invoke: Invoke) -> None:
    fake = FakeBackend(
        operation_states=[
            operation("op-1", "running"),
            operation("op-1", "running"),
            operation("op-1", "completed"),
        ],
        log_messages=[f"line {i}" for i in range(5)],
        logs_visible=[2, 4, 5],  # lines that exist after the 1st, 2nd and 3rd status check
    )
    result = invoke(["ops", "logs", "op-1", "--follow", *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    assert [line.split(": ", 1)[1] for line in result.stdout.splitlines()] == [f"line {i}" for i in range(5)]
    assert fake.polls == 3
    assert "operation op-1 completed" in result.stderr


def test_logs_the_server_truncated_say_so(invoke: Invoke) -> None:
    fake = FakeBackend(logs_truncated=True)
    result = invoke(["ops", "logs", "op-1", *SERVER], env=env_for(fake))
    assert result.exit_code == 0
    assert "the server dropped later lines of this log" in result.stderr


def test_retry_resumes_from_the_checkpoint_unless_told_to_start_from_scratch(invoke: Invoke) -> None:
    fake = FakeBackend()
    resumed = invoke(["ops", "retry", "op-1", *SERVER], env=env_for(fake))
    scratch = invoke(["ops", "retry", "op-1", "--from-scratch", *SERVER], env=env_for(fake))

    assert resumed.exit_code == 0, resumed.output
    assert "operation op-1: pending, attempt 2 from its last checkpoint" in resumed.stdout
    assert "attempt 2 from scratch" in scratch.stdout
    bodies = [json.loads(r.content) for r in fake.sent("POST", "/api/v1/operations/op-1/retry")]
    assert bodies == [{"from_checkpoint": True}, {"from_checkpoint": False}]
