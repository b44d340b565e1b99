"""Command trainings through the API, in-process with the real executor (local mode) and real programs:
the commands listing, every bad input refused before anything is created, a run, and a cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.components import Adapters
from backend.main import create_app
from backend.settings import Settings
from shared.trainkit.workloads.command.process import group_members
from tests.backend.conftest import wait_for_status
from tests.trainkit.command_programs import alive, copy_samples, write_command, write_program

pytestmark = pytest.mark.anyio

#: Reports its pid and a child's, then prints a seed-004 line every 20 ms until stopped.
ENDLESS = """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print("PIDS", os.getpid(), child.pid, flush=True)
    step = 0
    while True:
        step += 1
        print(f"step: {step} loss: {1 / step:.4f}", flush=True)
        time.sleep(0.02)
"""
GRACE_S = 1.0


@pytest.fixture
def commands_dir(settings: Settings, tmp_path: Path) -> Path:
    folder = copy_samples(tmp_path / "commands")
    write_program(folder, "endless.py", ENDLESS)
    write_command(folder, "endless", "endless.py", stop_grace_s=GRACE_S, max_runtime_s=60)
    write_command(folder, "ghost", "no_such_script.py")
    (folder / "nobin.yaml").write_text("name: nobin\nargv: [no-such-trainer-xyz, --go]\n")
    (folder / "broken.yaml").write_text("name: broken\nargv: [a, b\n")
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    settings.commands_dir = folder
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "escape.csv").symlink_to(tmp_path / "secret.csv")
    return folder


@pytest.fixture
async def api(settings: Settings, commands_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Every adapter real: the executor runs command trainings on the local worker thread."""
    app = create_app(settings, Adapters())
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await lifespan.__aexit__(None, None, None)


def _body(name: str, params: dict[str, Any] | None = None, **command: Any) -> dict[str, Any]:
    return {
        "workload": "command",
        "command": {"name": name, "params": params or {}, **command},
        "name": "exp",
    }


async def test_the_commands_listing_shows_the_sample_and_an_invalid_file_with_its_error(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/api/v1/commands")
    assert response.status_code == 200
    items = {item["name"]: item for item in response.json()["items"]}
    assert set(items) == {"broken", "endless", "ghost", "nobin", "toy"}
    toy = items["toy"]
    assert toy["valid"] is True
    assert toy["path"] == "toy.yaml"
    assert toy["params"]["steps"] == {
        "type": "int",
        "default": 600,
        "min": 1.0,
        "max": 1000000.0,
        "choices": None,
        "pattern": None,
        "description": "Optimizer steps to run.",
    }
    assert toy["progress"] == {"metric": "step", "total": None, "total_param": "steps"}
    assert "argv" not in toy
    broken = items["broken"]
    assert broken["valid"] is False
    assert "YAML syntax error at line" in broken["error"]


async def test_one_command_is_described_and_an_unknown_one_is_404_listing_the_known(
    api: httpx.AsyncClient,
) -> None:
    toy = await api.get("/api/v1/commands/toy")
    assert toy.status_code == 200
    assert toy.json()["artifacts"] == ["model.pt", "*.json"]
    missing = await api.get("/api/v1/commands/nope")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "command_not_found"
    assert error["details"]["known"] == ["endless", "ghost", "nobin", "toy"]
    assert "known commands: endless, ghost, nobin, toy" in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (_body("nope"), 404, "command_not_found", "command.name"),
        (_body("toy", {"steps": 0}), 422, "invalid_config", "command.params.steps"),
        (_body("toy", {"steps": "many"}), 422, "invalid_config", "command.params.steps"),
        (_body("toy", {"optimizer": "$(id)"}), 422, "invalid_config", "command.params.optimizer"),
        (_body("toy", {"shell": "; rm -rf /"}), 422, "invalid_config", "command.params.shell"),
        (_body("toy", dataset="../secret.csv"), 422, "invalid_config", "command.dataset"),
        (_body("toy", dataset="escape.csv"), 422, "invalid_config", "command.dataset"),
        (_body("toy", dataset="/etc/passwd"), 422, "invalid_config", "command.dataset"),
        (_body("toy", dataset="absent.csv"), 404, "data_not_found", "command.dataset"),
        (_body("ghost"), 422, "invalid_config", "command.name"),
        (_body("nobin"), 422, "invalid_config", "command.name"),
        (_body("broken"), 422, "invalid_config", ""),
    ],
)
async def test_a_bad_command_request_is_refused_naming_the_field_and_creates_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    response = await api.post("/api/v1/trainings", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["field"] == field
    assert (await api.get("/api/v1/operations")).json()["items"] == []


async def test_the_toy_command_completes_with_step_rows_its_lines_logged_and_its_weights_stored(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    body = _body("toy", {"steps": 30, "val_every": 10, "hidden": 8})
    response = await api.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    op_id = response.json()["operation_id"]
    done = await wait_for_status(api, op_id, {"completed", "failed"}, deadline_s=60)
    assert done["status"] == "completed", done
    assert done["result"]["model"]["strategy"] == "toy"
    model_dir = settings.models_dir / "toy" / "exp_v1" / "files"
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.pt", "training.json"]
    metrics = (await api.get(f"/api/v1/operations/{op_id}/metrics")).json()
    assert [row["step"] for row in metrics["history"]] == [10, 20, 30]
    assert all({"loss", "lr", "val_loss"} <= set(row) for row in metrics["history"])
    assert metrics["telemetry"]["command.run"]["count"] == 1
    best = min(metrics["history"], key=lambda row: row["val_loss"])
    assert (metrics["best_epoch"], metrics["analysis"]["best_step"]) == (None, best["step"])
    assert metrics["best_val_loss"] == best["val_loss"]
    request = (await api.get(f"/api/v1/operations/{op_id}/request")).json()
    assert (request["workload"], request["command"]["name"], request["name"]) == ("command", "toy", "exp")
    assert request["command"]["params"]["steps"] == 30
    logs = (await api.get(f"/api/v1/operations/{op_id}/logs")).json()
    messages = [line["message"] for line in logs["lines"]]
    assert any(m.startswith("step: 30 loss: ") for m in messages)
    assert any(m.startswith("wrote ") and m.endswith("model.pt") for m in messages)
    output = await api.get(f"/api/v1/operations/{op_id}/output")
    assert output.status_code == 200
    assert output.headers["content-type"].startswith("text/plain")
    printed = [line.split(" ", 1)[1] for line in output.text.splitlines()]
    assert [m for m in messages if m.startswith("step: ")] == [p for p in printed if p.startswith("step: ")]


async def test_the_output_of_an_unknown_operation_is_a_404(api: httpx.AsyncClient) -> None:
    unknown = await api.get("/api/v1/operations/op_nope/output")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "operation_not_found"


async def test_cancel_of_a_running_command_stops_it_and_its_children_within_the_grace(
    api: httpx.AsyncClient,
) -> None:
    op_id = (await api.post("/api/v1/trainings", json=_body("endless"))).json()["operation_id"]
    await wait_for_status(api, op_id, {"running"})
    pids = await _reported_pids(api, op_id)
    assert all(alive(pid) for pid in pids)
    started = time.monotonic()
    cancel = await api.post(f"/api/v1/operations/{op_id}/cancel")
    assert cancel.status_code == 202
    done = await wait_for_status(api, op_id, {"cancelled", "failed", "completed"}, deadline_s=GRACE_S + 5)
    elapsed = time.monotonic() - started
    assert done["status"] == "cancelled", done
    assert elapsed <= GRACE_S + 1.0
    assert [pid for pid in pids if alive(pid)] == []
    assert group_members(pids[0]) == []


async def _reported_pids(api: httpx.AsyncClient, op_id: str, deadline_s: float = 10.0) -> list[int]:
    """The program's pid (its process group's id) and its child's, from the PIDS line in the logs."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        lines = (await api.get(f"/api/v1/operations/{op_id}/logs")).json()["lines"]
        for message in (line["message"] for line in lines):
            if message.startswith("PIDS "):
                return [int(pid) for pid in message.split()[1:]]
        await asyncio.sleep(0.02)
    raise AssertionError("the program never reported its pids")
