"""The CLI against a real ``modelyard serve`` on 127.0.0.1: submit, follow, list, download."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.cli.options import CliEnv
from tests.cli.conftest import SAMPLE_STRATEGIES, Invoke
from tests.servers import free_port, wait_healthy

pytestmark = pytest.mark.e2e

START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory, tiny_candles: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("server")
    shutil.copytree(tiny_candles, root / "data")
    shutil.copytree(SAMPLE_STRATEGIES, root / "strategies")
    port = free_port()
    env = {
        **os.environ,
        "MODELYARD_PORT": str(port),
        "MODELYARD_HOST": "127.0.0.1",
        "MODELYARD_DATABASE_URL": f"sqlite:///{root / 'modelyard.db'}",
        "MODELYARD_DATA_DIR": str(root / "data"),
        "MODELYARD_MODELS_DIR": str(root / "models"),
        "MODELYARD_STRATEGIES_DIR": str(root / "strategies"),
        "MODELYARD_RUNS_DIR": str(root / "runs"),
        "MODELYARD_GENERATE_SAMPLE_DATA": "false",
        "MODELYARD_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    log = root / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", "from backend.cli import main; main()", "serve"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server, START_DEADLINE_S, every=0.2, log=log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(STOP_DEADLINE_S)


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, remembering the method and path of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path))
        return super().handle_request(request)


def test_train_on_the_server_follows_to_a_stored_model_that_cannot_be_cancelled_after(
    invoke: Invoke, server_url: str
) -> None:
    transport = RecordingTransport()
    env = CliEnv(transport=transport, poll_interval_s=0.2)
    server = ["--server", server_url]
    args = ["train", "trend_momentum", "--symbol", "EURUSD", "--timeframe", "1h", "--epochs", "2"]
    trained = invoke([*args, *server], env=env)
    assert trained.exit_code == 0, trained.output
    assert "macro F1" in trained.stdout
    assert "EURUSD_1h_v1" in trained.stdout
    followed = [path for method, path in transport.sent if method == "GET"]
    assert len(followed) == 1  # live over the event stream: no polling
    assert followed[0].endswith("/events")

    listed = invoke(["models", "list", "--json", *server], env=env)
    [model] = json.loads(listed.stdout)
    assert (model["strategy"], model["name"], model["latest_version"]) == ("trend_momentum", "EURUSD_1h", 1)

    ops = invoke(["ops", "list", "--status", "completed", "--json", *server], env=env)
    [op] = json.loads(ops.stdout)["items"]

    shown = invoke(["ops", "show", op["operation_id"], *server], env=env)
    for row in ("trend_momentum/EURUSD_1h v1", "model path", "test accuracy", "macro F1", "best epoch",
                "stop reason", "device"):  # fmt: skip
        assert row in shown.stdout, row
    logs = invoke(["ops", "logs", op["operation_id"], "--tail", "2", *server], env=env)
    assert logs.exit_code == 0
    assert len(logs.stdout.splitlines()) == 2

    refused = invoke(["ops", "cancel", op["operation_id"], *server], env=env)
    assert refused.exit_code == 2
    assert "HTTP 409" in refused.stderr
    not_retried = invoke(["ops", "retry", op["operation_id"], *server], env=env)
    assert not_retried.exit_code == 2
    assert "HTTP 409" in not_retried.stderr
    assert "cannot be retried: it is completed" in not_retried.stderr


def test_a_strategy_the_server_does_not_have_is_reported_plainly(invoke: Invoke, server_url: str) -> None:
    result = invoke(["train", "no_such_strategy", "--symbol", "EURUSD", "--timeframe", "1h",
                     "--server", server_url])  # fmt: skip
    assert result.exit_code == 2
    assert "no_such_strategy" in result.stderr
    assert "HTTP 404" in result.stderr


def test_a_training_in_a_project_is_listed_by_project_and_tag_and_counted(
    invoke: Invoke, server_url: str
) -> None:
    env = CliEnv(poll_interval_s=0.2)
    server = ["--server", server_url]
    experiment = ["--project", "fx", "--name", "baseline", "--tag", "cli", "--tag", "e2e"]
    args = ["train", "trend_momentum", "--symbol", "EURUSD", "--timeframe", "1h", "--epochs", "1"]
    trained = invoke([*args, *experiment, "--json", *server], env=env)
    assert trained.exit_code == 0, trained.output

    listed = invoke(
        ["ops", "list", "--project", "fx", "--tag", "e2e", "--tag", "cli", "--json", *server], env=env
    )
    [op] = json.loads(listed.stdout)["items"]
    assert (op["project"], op["name"], op["tags"], op["workload"]) == (
        "fx",
        "baseline",
        ["cli", "e2e"],
        "strategy",
    )
    none = invoke(["ops", "list", "--project", "fx", "--tag", "other", *server], env=env)
    assert none.stdout.strip() == "no operations in project fx tagged other"
    table = invoke(["ops", "list", "--project", "fx", *server], env=env)
    assert "cli, e2e" in table.stdout

    projects = invoke(["projects", "--json", *server], env=env)
    by_name = {p["project"]: p for p in json.loads(projects.stdout)["items"]}
    assert by_name["fx"]["by_status"] == {"completed": 1}
    assert next(iter(by_name)) == "fx"  # the most recently active first


def test_a_parquet_table_uploaded_by_the_cli_is_previewed_and_trained_on(
    invoke: Invoke, server_url: str, tmp_path: Path
) -> None:
    import pandas as pd

    rows = 60
    frame = pd.DataFrame(
        {
            "x": [float(i % 10) for i in range(rows)],
            "colour": ["red" if i % 3 else None for i in range(rows)],
            "label": ["hi" if i % 10 >= 5 else "lo" for i in range(rows)],
        }
    )
    frame.to_parquet(tmp_path / "levels.parquet", index=False)
    server = ["--server", server_url]
    uploaded = invoke(["data", "upload", str(tmp_path / "levels.parquet"), *server])
    assert uploaded.exit_code == 0, uploaded.output
    assert "uploaded table levels.parquet: 60 rows, 3 columns (parquet" in uploaded.stdout

    preview = invoke(["data", "preview", "levels.parquet", "--json", *server])
    body = json.loads(preview.stdout)
    assert [(c["name"], c["dtype"], c["missing"]) for c in body["columns"]] == [
        ("x", "float64", 0),
        ("colour", "string", 20),
        ("label", "string", 0),
    ]
    table = invoke(["data", "preview", "levels.parquet", *server])
    assert "colour" in table.stdout
    assert "60 rows" in table.stdout

    trained = invoke(["train", "levels", "--workload", "tabular", "--dataset", "levels.parquet",
                      "--target", "label", "--epochs", "3", *server], env=CliEnv(poll_interval_s=0.2))  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "levels_label" in trained.stdout


def test_a_csv_without_a_header_uploaded_by_the_cli_is_refused_with_the_fix(
    invoke: Invoke, server_url: str, tmp_path: Path
) -> None:
    (tmp_path / "numbers.csv").write_text("1,2,3\n4,5,6\n")
    result = invoke(["data", "upload", str(tmp_path / "numbers.csv"), "--server", server_url])
    assert result.exit_code == 2
    assert "has no header" in result.stderr
    assert "HTTP 422" in result.stderr
    listed = httpx.get(f"{server_url}/api/v1/data", timeout=10).json()["items"]
    assert "numbers.csv" not in [d["path"] for d in listed]


def test_alias_set_download_by_alias_and_history_through_the_cli(
    invoke: Invoke, server_url: str, tmp_path: Path
) -> None:
    env = CliEnv(poll_interval_s=0.2)
    server = ["--server", server_url]
    args = ["train", "trend_momentum", "--symbol", "EURUSD", "--timeframe", "1h", "--epochs", "1"]
    for _ in range(2):
        assert invoke([*args, *server], env=env).exit_code == 0
    [model] = [m for m in json.loads(invoke(["models", "list", "--json", *server], env=env).stdout)
               if m["name"] == "EURUSD_1h"]  # fmt: skip
    latest = model["latest_version"]
    assert latest >= 2
    before, after = str(latest - 1), str(latest)
    first = invoke(
        ["models", "alias", "set", "trend_momentum", "EURUSD_1h", "production", before, *server], env=env
    )
    assert first.exit_code == 0, first.output
    moved = invoke(
        ["models", "alias", "set", "trend_momentum", "EURUSD_1h", "production", after, *server], env=env
    )
    assert f"production -> v{after} (was v{before})" in moved.stdout
    bad = invoke(["models", "alias", "set", "trend_momentum", "EURUSD_1h", "a/b", after, *server], env=env)
    assert bad.exit_code == 2
    assert "HTTP 422" in bad.stderr
    target = tmp_path / "prod.zip"
    got = invoke(
        ["models", "download", "trend_momentum", "EURUSD_1h", "production", "-o", str(target), *server]
    )
    assert got.exit_code == 0, got.output
    assert target.stat().st_size > 0
    listing = json.loads(
        invoke(["models", "alias", "list", "trend_momentum", "EURUSD_1h", "--json", *server], env=env).stdout
    )
    assert [(a["alias"], a["version"]) for a in listing["aliases"]] == [("production", latest)]
    assert [(h["action"], h["from_version"]) for h in listing["history"]] == [
        ("moved", latest - 1),
        ("set", None),
    ]


def test_sweep_start_follows_a_live_table_to_the_best_trial_then_show_and_cancel(
    invoke: Invoke, server_url: str, tmp_path: Path
) -> None:
    env = CliEnv(poll_interval_s=0.2)
    server = ["--server", server_url]
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        "base: {strategy: trend_momentum, symbol: EURUSD, timeframe: 1h, overrides: {epochs: 1}}\n"
        "space:\n"
        "  overrides.learning_rate: {type: float, low: 0.0005, high: 0.05, log: true}\n"
        "objective: {metric: val_loss, direction: minimize}\n"
        "n_trials: 2\n"
        "parallelism: 1\n"
    )
    started = invoke(["sweep", "start", str(spec), *server], env=env)
    assert started.exit_code == 0, started.output
    sweep_id = started.stdout.split()[1]
    assert "best: trial" in started.stdout
    assert f"sweep-{sweep_id}-best" in started.stdout
    shown = json.loads(invoke(["sweep", "show", sweep_id, "--json", *server], env=env).stdout)
    assert shown["status"] == "completed"
    assert len(shown["trials"]) == 2
    listed = invoke(["sweep", "show", *server], env=env)
    assert sweep_id in listed.stdout
    refused = invoke(["sweep", "cancel", sweep_id, *server], env=env)
    assert refused.exit_code == 2
    assert "HTTP 409" in refused.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text().replace("n_trials: 2", "n_trials: 0"))
    refused_bad = invoke(["sweep", "start", str(bad), *server], env=env)
    assert refused_bad.exit_code == 2
    assert "n_trials" in refused_bad.stderr
