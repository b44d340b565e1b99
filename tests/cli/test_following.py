"""Following a server's training: live over the event stream, reconnects, the polling fallback, Ctrl-C."""

from __future__ import annotations

import httpx
import pytest

from backend.cli.backend_client import EVENTS_TIMEOUT
from backend.cli.options import CliEnv
from backend.cli.remote_training import MAX_STREAM_FAILURES
from backend.settings import Settings
from tests.cli.conftest import Invoke
from tests.cli.fake_backend import COMPLETED_RESULT, FakeBackend, operation

SERVER = ["--server", "http://backend.test"]
TRAIN = ["train", "trend_momentum", "--symbol", "EURUSD", "--timeframe", "1h", *SERVER]
EVENTS = "/api/v1/operations/op-1/events"


def env_for(fake: FakeBackend) -> CliEnv:
    return CliEnv(transport=fake.transport(), poll_interval_s=0.0)


def running(percentage: float = 45.0) -> dict[str, object]:
    return operation("op-1", "running", percentage)


def completed() -> dict[str, object]:
    return operation("op-1", "completed", 100.0, result=COMPLETED_RESULT)


def dropped() -> httpx.ReadError:
    return httpx.ReadError("connection reset by peer")


def test_train_follows_the_event_stream_without_polling(invoke: Invoke) -> None:
    fake = FakeBackend(event_streams=[[operation("op-1", "pending"), running(), completed()]])
    result = invoke(TRAIN, env=env_for(fake))
    assert result.exit_code == 0, result.output
    assert (fake.event_connections, fake.polls) == (1, 0)
    assert "macro F1" in result.stdout
    [request] = fake.sent("GET", EVENTS)
    assert request.headers["accept"] == "text/event-stream"


def test_the_stream_read_timeout_outlasts_the_servers_heartbeat_interval(invoke: Invoke) -> None:
    fake = FakeBackend(event_streams=[[completed()]])
    assert invoke(["ops", "follow", "op-1", *SERVER], env=env_for(fake)).exit_code == 0
    [request] = fake.sent("GET", EVENTS)
    read_timeout = request.extensions["timeout"]["read"]
    heartbeat_s = Settings.model_fields["sse_heartbeat_s"].default
    assert read_timeout == EVENTS_TIMEOUT.read
    assert read_timeout >= 3 * heartbeat_s  # a couple of lost heartbeats are not a dead stream


def test_a_dropped_stream_is_reconnected_and_followed_to_the_end(invoke: Invoke) -> None:
    fake = FakeBackend(event_streams=[[running(30.0), dropped()], [running(60.0), completed()]])
    result = invoke(TRAIN, env=env_for(fake))
    assert result.exit_code == 0, result.output
    assert (fake.event_connections, fake.polls) == (2, 0)
    assert "models/trend_momentum/EURUSD_1h_v3" in result.stdout


def test_a_stream_that_ends_before_the_operation_is_reconnected(invoke: Invoke) -> None:
    fake = FakeBackend(event_streams=[[running(30.0)], [completed()]])
    result = invoke(["ops", "follow", "op-1", *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    assert fake.event_connections == 2


def test_a_stream_that_keeps_breaking_falls_back_to_polling(invoke: Invoke) -> None:
    fake = FakeBackend(
        operation_states=[running(), completed()],
        event_streams=[[dropped()]],  # every connection breaks before its first event
    )
    result = invoke(TRAIN, env=env_for(fake))
    assert result.exit_code == 0, result.output
    assert fake.event_connections == MAX_STREAM_FAILURES
    assert fake.polls == 2
    assert "macro F1" in result.stdout


def test_a_server_without_the_event_stream_is_polled(invoke: Invoke) -> None:
    fake = FakeBackend(operation_states=[running(), completed()], stream_events=False)
    result = invoke(TRAIN, env=env_for(fake))
    assert result.exit_code == 0, result.output
    assert len(fake.sent("GET", EVENTS)) == 1
    assert fake.polls == 2


def test_following_an_unknown_operation_reports_the_servers_404(invoke: Invoke) -> None:
    missing = {"error": {"code": "operation_not_found", "message": "no operation 'zz'", "details": {}}}
    fake = FakeBackend(
        errors={
            ("GET", "/api/v1/operations/zz/events"): (404, missing),
            ("GET", "/api/v1/operations/zz"): (404, missing),
        }
    )
    result = invoke(["ops", "follow", "zz", *SERVER], env=env_for(fake))
    assert result.exit_code == 2
    assert "no operation 'zz' (HTTP 404, operation_not_found)" in result.stderr


@pytest.mark.parametrize("command", [TRAIN, ["ops", "follow", "op-1", *SERVER]])
def test_ctrl_c_answered_no_leaves_the_training_running_and_exits_0(
    invoke: Invoke, command: list[str]
) -> None:
    fake = FakeBackend(event_streams=[[running(), KeyboardInterrupt()]])
    result = invoke(command, env=env_for(fake), input="n\n")
    assert result.exit_code == 0, result.output
    assert fake.sent("POST", "/api/v1/operations/op-1/cancel") == []
    assert "left running on the server: follow it with `modelyard ops follow op-1`" in result.stderr
    assert "Error" not in result.stderr


def test_ctrl_c_with_nobody_to_answer_leaves_the_training_running(invoke: Invoke) -> None:
    fake = FakeBackend(event_streams=[[running(), KeyboardInterrupt()]])
    result = invoke(["ops", "follow", "op-1", *SERVER], env=env_for(fake))  # stdin at EOF: click aborts
    assert result.exit_code == 0, result.output
    assert fake.sent("POST", "/api/v1/operations/op-1/cancel") == []
    assert "left running on the server" in result.stderr


def test_ctrl_c_while_polling_still_offers_to_cancel(invoke: Invoke) -> None:
    fake = FakeBackend(operation_states=[running()], stream_events=False, interrupt_on_poll=2)
    result = invoke(["ops", "follow", "op-1", *SERVER], env=env_for(fake), input="y\n")
    assert result.exit_code == 130
    assert len(fake.sent("POST", "/api/v1/operations/op-1/cancel")) == 1
