"""Commands that talk to the backend, against a scripted FakeBackend (httpx.MockTransport)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from backend.cli import cli
from backend.cli.options import CliEnv
from tests.cli.conftest import Invoke, Workspace
from tests.cli.fake_backend import COMPLETED_RESULT, FakeBackend, operation

SERVER = ["--server", "http://backend.test"]
MARKET = ["--symbol", "EURUSD", "--timeframe", "1h"]


def env_for(fake: FakeBackend) -> CliEnv:
    return CliEnv(transport=fake.transport(), poll_interval_s=0.0)


def finished_training(status: str = "completed", **extra: object) -> FakeBackend:
    return FakeBackend(
        operation_states=[
            operation("op-1", "pending"),
            operation("op-1", "running", 45.0),
            operation("op-1", status, 100.0 if status == "completed" else 45.0, **extra),
        ]
    )


def test_train_with_a_server_submits_the_file_inline_and_follows_to_the_result(
    invoke: Invoke, workspace: Workspace
) -> None:
    fake = finished_training(result=COMPLETED_RESULT)
    strategy = workspace.strategies / "trend_momentum.yaml"
    result = invoke(["train", str(strategy), *MARKET, "--epochs", "3", *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    [post] = fake.sent("POST", "/api/v1/trainings")
    body = json.loads(post.content)
    assert body["strategy_yaml"] == strategy.read_text()
    assert body["symbol"] == "EURUSD"
    assert body["timeframe"] == "1h"
    assert body["overrides"] == {"epochs": 3}
    assert (fake.event_connections, fake.polls) == (1, 0)  # followed live on the event stream
    assert "macro F1" in result.stdout
    assert "models/trend_momentum/EURUSD_1h_v3" in result.stdout
    assert "warning: few rows" in result.stderr


def test_train_with_a_server_sends_a_name_that_is_not_a_local_file(invoke: Invoke) -> None:
    fake = finished_training(result=COMPLETED_RESULT)
    dates = ["--start-date", "2024-01-01", "--end-date", "2024-06-30"]
    args = ["train", "trend_momentum", *MARKET, "--symbol", "BTCUSD", *dates, "--execution-mode", "local"]
    result = invoke([*args, *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    body = json.loads(fake.sent("POST", "/api/v1/trainings")[0].content)
    assert body["strategy"] == "trend_momentum"
    assert "strategy_yaml" not in body
    assert body["symbol"] == ["EURUSD", "BTCUSD"]
    assert (body["start_date"], body["end_date"], body["execution_mode"]) == (
        "2024-01-01",
        "2024-06-30",
        "local",
    )


def test_server_comes_from_the_environment_variable() -> None:
    fake = finished_training(result=COMPLETED_RESULT)
    result = CliRunner().invoke(
        cli,
        ["train", "trend_momentum", *MARKET],
        obj=env_for(fake),
        env={"MODELYARD_SERVER": "http://env.test"},
    )
    assert result.exit_code == 0, result.output
    assert fake.sent("POST", "/api/v1/trainings")[0].url.host == "env.test"


def test_no_follow_returns_the_operation_id_at_once(invoke: Invoke) -> None:
    fake = finished_training()
    result = invoke(["train", "trend_momentum", *MARKET, "--no-follow", *SERVER], env=env_for(fake))
    assert result.exit_code == 0
    assert "op-1" in result.stdout
    assert "modelyard ops follow op-1" in result.stdout
    assert fake.polls == 0


def test_a_failed_server_training_exits_1_with_its_error(invoke: Invoke) -> None:
    error = {"code": "invalid_data", "message": "EURUSD_1h.csv row 12: negative close"}
    fake = finished_training("failed", error=error)
    result = invoke(["train", "trend_momentum", *MARKET, *SERVER], env=env_for(fake))
    assert result.exit_code == 1
    assert "invalid_data: EURUSD_1h.csv row 12: negative close" in result.stderr


def test_api_errors_are_printed_plainly_with_their_details_and_exit_2(invoke: Invoke) -> None:
    body = {
        "error": {
            "code": "strategy_not_found",
            "message": "no strategy 'x'",
            "details": {"field": "strategy"},
        }
    }
    fake = FakeBackend(errors={("POST", "/api/v1/trainings"): (404, body)})
    result = invoke(["train", "x", *MARKET, *SERVER], env=env_for(fake))
    assert result.exit_code == 2
    assert "Error: no strategy 'x' (HTTP 404, strategy_not_found)" in result.stderr
    assert "field: strategy" in result.stderr
    assert "Traceback" not in result.output


def test_a_server_error_without_json_body_exits_1(invoke: Invoke) -> None:
    fake = FakeBackend()
    fake.errors[("GET", "/api/v1/operations")] = (502, {"unexpected": True})
    result = invoke(["ops", "list", *SERVER], env=env_for(fake))
    assert result.exit_code == 1
    assert "HTTP 502" in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_says_so_and_exits_3(invoke: Invoke) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    for args in (["ops", "list"], ["train", "trend_momentum", *MARKET], ["models", "list"]):
        result = invoke([*args, "--server", url], env=CliEnv())
        assert result.exit_code == 3, args
        assert f"cannot reach the modelyard server at {url}: is it running? (make run)" in result.stderr


def test_ctrl_c_while_following_asks_and_cancels_on_yes(invoke: Invoke) -> None:
    fake = FakeBackend(event_streams=[[operation("op-1", "running", 30.0), KeyboardInterrupt()]])
    result = invoke(["train", "trend_momentum", *MARKET, *SERVER], env=env_for(fake), input="y\n")
    assert result.exit_code == 130
    assert "Cancel the training on the server? [y/N]" in result.output
    assert len(fake.sent("POST", "/api/v1/operations/op-1/cancel")) == 1
    assert "op-1: cancelling" in result.stderr


def test_ops_list_shows_operations_and_passes_filters(invoke: Invoke) -> None:
    fake = FakeBackend()
    result = invoke(["ops", "list", "--status", "running", "--limit", "2", *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    [request] = fake.sent("GET", "/api/v1/operations")
    assert dict(request.url.params) == {"status": "running", "limit": "2"}
    assert "op-2" in result.stdout
    assert "40%" in result.stdout
    assert "2 of 5 shown" in result.stdout


def test_ops_show_and_follow_of_a_completed_operation(invoke: Invoke) -> None:
    fake = FakeBackend(operation_states=[operation("op-1", "completed", 100.0, result=COMPLETED_RESULT)])
    shown = invoke(["ops", "show", "op-1", *SERVER], env=env_for(fake))
    assert shown.exit_code == 0
    assert "completed" in shown.stdout
    followed = invoke(["ops", "follow", "op-1", "--json", *SERVER], env=env_for(fake))
    assert followed.exit_code == 0
    assert json.loads(followed.stdout)["result"]["model"]["version"] == 3


def test_ops_show_of_an_unknown_id_prints_the_server_message(invoke: Invoke) -> None:
    body = {"error": {"code": "operation_not_found", "message": "no operation 'zz'", "details": {}}}
    fake = FakeBackend(errors={("GET", "/api/v1/operations/zz"): (404, body)})
    result = invoke(["ops", "show", "zz", *SERVER], env=env_for(fake))
    assert result.exit_code == 2
    assert "no operation 'zz'" in result.stderr


def test_ops_cancel_and_logs(invoke: Invoke) -> None:
    fake = FakeBackend()
    cancelled = invoke(["ops", "cancel", "op-7", *SERVER], env=env_for(fake))
    assert cancelled.exit_code == 0
    assert "op-7: cancelling" in cancelled.stdout
    logs = invoke(["ops", "logs", "op-1", *SERVER], env=env_for(fake))
    assert "INFO    trainkit: epoch 1/2: loss 0.9" in logs.stdout


def test_models_list_and_show_on_the_server(invoke: Invoke) -> None:
    fake = FakeBackend()
    listed = invoke(["models", "list", *SERVER], env=env_for(fake))
    assert "EURUSD_1h" in listed.stdout
    assert "v2" in listed.stdout
    shown = invoke(["models", "show", "trend_momentum", "EURUSD_1h", *SERVER], env=env_for(fake))
    assert "v2 (latest)" in shown.stdout
    assert "0.7000" in shown.stdout


def test_models_download_writes_the_archive(invoke: Invoke, tmp_path: Path) -> None:
    fake = FakeBackend()
    target = tmp_path / "m.zip"
    result = invoke(["models", "download", "trend_momentum", "EURUSD_1h", "2", "-o", str(target), *SERVER],
                    env=env_for(fake))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == b"PK\x03\x04fake-zip-bytes"


def test_models_download_of_a_missing_version_leaves_no_file(invoke: Invoke, tmp_path: Path) -> None:
    fake = FakeBackend()
    target = tmp_path / "m.zip"
    result = invoke(["models", "download", "trend_momentum", "EURUSD_1h", "9", "-o", str(target), *SERVER],
                    env=env_for(fake))  # fmt: skip
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_models_delete_asks_first_and_does_nothing_on_no(invoke: Invoke) -> None:
    fake = FakeBackend()
    path = "/api/v1/models/trend_momentum/EURUSD_1h/versions/1"
    refused = invoke(
        ["models", "delete", "trend_momentum", "EURUSD_1h", "1", *SERVER], env=env_for(fake), input="n\n"
    )
    assert refused.exit_code == 1
    assert fake.sent("DELETE", path) == []
    done = invoke(
        ["models", "delete", "trend_momentum", "EURUSD_1h", "1", "--yes", *SERVER], env=env_for(fake)
    )
    assert done.exit_code == 0
    assert len(fake.sent("DELETE", path)) == 1
