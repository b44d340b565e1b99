"""Projects, names and tags in the CLI against a FakeBackend: what `train`, `ops list` and `projects`
send and print."""

from __future__ import annotations

import json
import re

from backend.cli.options import CliEnv
from shared.contracts.training import TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor.types import ModelRef, ProgressCallback, TrainingResult
from tests.cli.conftest import Invoke, Workspace
from tests.cli.fake_backend import COMPLETED_RESULT, FakeBackend, operation

SERVER = ["--server", "http://backend.test"]
MARKET = ["--symbol", "EURUSD", "--timeframe", "1h"]


def env_for(fake: FakeBackend) -> CliEnv:
    return CliEnv(transport=fake.transport(), poll_interval_s=0.0)


def test_train_sends_the_project_name_and_every_tag(invoke: Invoke) -> None:
    fake = FakeBackend(operation_states=[operation("op-1", "completed", 100.0, result=COMPLETED_RESULT)])
    experiment = ["--project", "fx", "--name", "baseline.v2", "--tag", "gpu", "--tag", "baseline"]
    result = invoke(["train", "trend_momentum", *MARKET, *experiment, *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    body = json.loads(fake.sent("POST", "/api/v1/trainings")[0].content)
    assert (body["project"], body["name"], body["tags"]) == ("fx", "baseline.v2", ["gpu", "baseline"])


def test_train_without_them_leaves_the_servers_defaults(invoke: Invoke) -> None:
    fake = FakeBackend(operation_states=[operation("op-1", "completed", 100.0, result=COMPLETED_RESULT)])
    result = invoke(["train", "trend_momentum", *MARKET, *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    body = json.loads(fake.sent("POST", "/api/v1/trainings")[0].content)
    assert not {"project", "name", "tags"} & set(body)


def test_a_bad_project_tag_or_name_is_a_usage_error_before_any_request(invoke: Invoke) -> None:
    for bad in (["--project", "My Project"], ["--tag", "ok", "--tag", "NOT_OK"], ["--name", "../up"]):
        fake = FakeBackend()
        result = invoke(["train", "trend_momentum", *MARKET, *bad, *SERVER], env=env_for(fake))
        assert result.exit_code == 2, bad
        assert f"Invalid value for '{bad[-2]}'" in result.stderr
        assert "is not allowed: use" in result.stderr
        assert fake.requests == []


def test_ops_list_sends_its_filters_and_shows_project_name_and_tags(invoke: Invoke) -> None:
    fake = FakeBackend()
    filters = ["--project", "fx", "--tag", "gpu", "--tag", "baseline", "--workload", "tabular", "--active"]
    result = invoke(["ops", "list", *filters, *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    [sent] = fake.sent("GET", "/api/v1/operations")
    params = sent.url.params
    assert params["project"] == "fx"
    assert params.get_list("tag") == ["gpu", "baseline"]
    assert (params["workload"], params["active_only"]) == ("tabular", "true")
    assert "status" not in params
    header = result.stdout.splitlines()[2]
    for column in ("project", "name", "tags"):
        assert column in header
    op_2 = next(line for line in result.stdout.splitlines() if "op-2" in line)
    for shown in ("fx", "baseline.v2", "gpu, baseline"):
        assert shown in op_2
    op_1 = next(line for line in result.stdout.splitlines() if "op-1" in line)
    assert "default" in op_1


def test_ops_list_without_filters_sends_none(invoke: Invoke) -> None:
    fake = FakeBackend()
    assert invoke(["ops", "list", *SERVER], env=env_for(fake)).exit_code == 0
    [sent] = fake.sent("GET", "/api/v1/operations")
    assert set(sent.url.params) == {"limit"}


def test_ops_list_says_which_filters_matched_nothing(invoke: Invoke) -> None:
    fake = FakeBackend(listed=[])
    result = invoke(
        ["ops", "list", "--active", "--project", "fx", "--tag", "gpu", *SERVER], env=env_for(fake)
    )
    assert result.exit_code == 0
    assert result.stdout.strip() == "no operations active in project fx tagged gpu"


def test_projects_shows_counts_per_status_and_last_activity(invoke: Invoke) -> None:
    fake = FakeBackend(
        projects=[
            {
                "project": "fx",
                "total": 3,
                "by_status": {"completed": 2, "running": 1},
                "last_activity": "2025-01-05T10:30:00+00:00",
            },
            {
                "project": "default",
                "total": 1,
                "by_status": {"failed": 1},
                "last_activity": "2025-01-04T09:00:00+00:00",
            },
        ]
    )
    result = invoke(["projects", *SERVER], env=env_for(fake))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "project" in line and "total" in line)
    assert [c for c in ("running", "completed", "failed") if c in header] == [
        "running",
        "completed",
        "failed",
    ]
    assert "pending" not in header  # no project has one
    fx = next(line for line in lines if "fx" in line)
    assert "2025-01-05 10:30:00" in fx
    assert [cell.strip() for cell in fx.split("│")[1:-1]][:5] == ["fx", "3", "1", "2", "0"]


def test_projects_json_is_the_servers_list(invoke: Invoke) -> None:
    item = {"project": "fx", "total": 1, "by_status": {"pending": 1}, "last_activity": "2025-01-05T10:30:00Z"}
    result = invoke(["projects", "--json", *SERVER], env=env_for(FakeBackend(projects=[item])))
    assert result.exit_code == 0, result.output
    [project] = json.loads(result.stdout)["items"]
    assert (project["project"], project["by_status"]) == ("fx", {"pending": 1})


def test_projects_of_an_empty_server_say_how_to_start_one(invoke: Invoke) -> None:
    result = invoke(["projects", *SERVER], env=env_for(FakeBackend()))
    assert result.exit_code == 0
    assert "--project NAME" in result.stdout


class RecordingExecutor:
    """Trains nothing; remembers the request and run name it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[TrainingRequest, str | None]] = []

    def execute(
        self,
        request: TrainingRequest,
        progress: ProgressCallback,
        cancel: CancelToken,
        *,
        run_name: str | None = None,
    ) -> TrainingResult:
        self.calls.append((request, run_name))
        return TrainingResult(
            model=ModelRef("trend_momentum", "EURUSD_1h", 1, "models/trend_momentum/EURUSD_1h_v1"),
            device="cpu",
            test_metrics={"accuracy": 0.5},
            history=[],
            best_epoch=0,
            best_val_loss=1.0,
            epochs_trained=1,
            stop_reason="max_epochs",
            feature_importance={},
            duration_s=0.01,
        )


def test_an_in_process_run_takes_the_name_and_says_project_and_tags_need_a_server(
    invoke: Invoke, workspace: Workspace
) -> None:
    fake = RecordingExecutor()
    env = CliEnv(executor_factory=lambda data, models, runs: fake)
    args = ["train", "trend_momentum", *MARKET, "--name", "baseline.v2", "--project", "fx", "--tag", "gpu"]
    result = invoke([*args, *workspace.train_folders()], env=env)
    assert result.exit_code == 0, result.output
    [(request, run_name)] = fake.calls
    assert request.name == "baseline.v2"
    assert run_name is not None
    assert re.fullmatch(r"baseline\.v2-\d{8}-\d{6}-[0-9a-f]{6}", run_name)
    assert "--project and --tag are recorded by a server" in result.stderr
