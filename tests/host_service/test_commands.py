"""Command trainings on the host: checked against the host's own commands folder when a session is asked
for, the worker given the folder and a scratch folder, and several artefact files handed back as one tar
(or no model at all)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from host_service.adapters.result_files import ResultFolderSink, write_result
from shared.contracts.bundle import unpack_files
from shared.contracts.handoff import decode_inline_model
from shared.contracts.host import MODEL_SHA256_HEADER, ResultPayload
from shared.trainkit.executor.types import ModelArtifact
from tests.host_service.conftest import (
    CALLBACK_URL,
    CSV_SHA,
    DATA_URL,
    FakeBackend,
    Host,
    host_settings,
    run_host,
    wait_for,
    wait_status,
)
from tests.host_service.fakes import FakeLauncher

pytestmark = pytest.mark.anyio


def command_body(name: str = "toy", *, dataset: str | None = None, **params: Any) -> dict[str, Any]:
    command: dict[str, Any] = {"name": name, "params": params}
    if dataset is not None:
        command["dataset"] = dataset
    return {
        "operation_id": "op_cmd",
        "callback_url": CALLBACK_URL,
        "datasets": [{"filename": "EURUSD_1h.csv", "sha256": CSV_SHA, "url": DATA_URL}],
        "request": {"workload": "command", "command": command},
    }


async def _refused(host: Host, body: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    response = await host.client.post("/training/start", json=body)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert (await host.client.get("/training/sessions")).json()["items"] == []  # nothing claimed
    assert (await host.client.get("/health")).json()["sessions_in_use"] == 0
    assert host.launcher.workers == []
    return error


async def test_the_sample_commands_are_written_into_an_empty_commands_folder(host: Host) -> None:
    folder = host.settings.work_dir / "commands"
    assert host.settings.commands_folder == folder
    assert (folder / "toy.yaml").is_file()
    assert (folder / "toy_train.py").is_file()


async def test_a_command_the_host_does_not_have_is_refused_404_naming_the_known_ones(host: Host) -> None:
    error = await _refused(host, command_body("ghost"), 404, "command_not_found")
    assert "no command named 'ghost' in this host's commands folder (known here: toy)" in error["message"]
    assert "MODELYARD_HOST_COMMANDS_DIR" in error["message"]
    assert error["details"]["known"] == ["toy"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (command_body(steps=0), "command.params.steps must be a whole number from 1 to 1000000"),
        (command_body(nope=1), "command.params.nope: command 'toy' has no such param"),
        (command_body(dataset="other.csv"), "not among the files the backend sends"),
    ],
    ids=["out of range", "unknown param", "dataset not sent"],
)
async def test_a_request_that_does_not_fit_the_hosts_template_is_refused_422(
    host: Host, body: dict[str, Any], fragment: str
) -> None:
    error = await _refused(host, body, 422, "invalid_config")
    assert fragment in error["message"]
    assert error["details"]["field"].startswith("command.")


async def test_a_command_whose_program_is_missing_on_the_host_is_refused_422(tmp_path: Path) -> None:
    commands = tmp_path / "commands"
    commands.mkdir()
    (commands / "gone.yaml").write_text("name: gone\nargv: [no-such-program-here, '{output_dir}']\n")
    settings = host_settings(tmp_path, commands_dir=commands)
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        error = await _refused(host, command_body("gone"), 422, "invalid_config")
        assert "program 'no-such-program-here' is not installed on this machine" in error["message"]
        assert not (commands / "toy.yaml").exists()  # a folder with templates gets no samples


async def test_the_worker_gets_the_commands_folder_and_a_scratch_folder_in_the_session(host: Host) -> None:
    response = await host.client.post("/training/start", json=command_body(dataset="EURUSD_1h.csv"))
    assert response.status_code == 202, response.text
    session_id = response.json()["session_id"]
    await wait_status(host, session_id, "running")
    spec = host.launcher.workers[0].spec
    assert spec.commands_dir == host.settings.work_dir / "commands"
    assert spec.scratch_dir == host.settings.work_dir / "sessions" / session_id / "scratch"


def _artefacts(tmp_path: Path) -> dict[str, Path]:
    out = tmp_path / "output"
    (out / "sub").mkdir(parents=True)
    (out / "model.pt").write_bytes(bytes(range(256)) * 30)
    (out / "sub" / "training.json").write_text('{"steps": 3}')
    return {"model.pt": out / "model.pt", "sub/training.json": out / "sub" / "training.json"}


def _command_result(files: dict[str, Path] | None) -> Callable[[Path], None]:
    def write(result_dir: Path) -> None:
        model = None
        if files is not None:
            artifact = ModelArtifact(
                "toy", "toy", b"", {"params": {}}, {}, {}, {"workload": "command"}, files
            )
            model = ResultFolderSink(result_dir).save(artifact).as_dict()
        write_result(result_dir, {"model": model, "device": "cpu", "warnings": ["kept nothing"]})

    return write


async def _completed_payload(host: Host, result: Callable[[Path], None]) -> tuple[str, ResultPayload]:
    response = await host.client.post("/training/start", json=command_body())
    session_id: str = response.json()["session_id"]
    await wait_status(host, session_id, "running")
    host.launcher.workers[0].complete(result)
    await wait_status(host, session_id, "completed")
    callback = await wait_for(lambda: host.backend.callbacks and host.backend.callbacks[0])
    return session_id, ResultPayload.model_validate_json(callback.content)


@pytest.mark.parametrize("limit", [1 << 20, 1000], ids=["inline", "streamed"])
async def test_several_artefact_files_travel_as_one_tar_that_unpacks_to_the_same_bytes(
    tmp_path: Path, limit: int
) -> None:
    files = _artefacts(tmp_path)
    settings = host_settings(tmp_path, inline_model_limit_bytes=limit)
    async for host in run_host(settings, FakeLauncher(), FakeBackend()):
        session_id, payload = await _completed_payload(host, _command_result(files))
        assert payload.artifact is not None
        assert payload.model is not None
        assert payload.artifact.bundle == "tar"
        expected = {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in files.items()}
        assert {n: e.sha256 for n, e in payload.artifact.files.items()} == expected
        bundle = tmp_path / "received.tar"
        if payload.model.encoding == "gzip+base64":
            bundle.write_bytes(decode_inline_model(payload.model.model_dump(), max_size=1 << 20))
        else:
            raw = await host.client.get(payload.model.url)
            assert raw.headers[MODEL_SHA256_HEADER] == payload.model.sha256
            bundle.write_bytes(raw.content)
        assert (payload.model.encoding == "external") == (limit == 1000)
        listed = {n: e.model_dump() for n, e in payload.artifact.files.items()}
        target = tmp_path / "unpacked"
        target.mkdir()
        unpacked = unpack_files(bundle, listed, target, max_bytes=1 << 20)
        assert {n: p.read_bytes() for n, p in unpacked.items()} == {
            n: p.read_bytes() for n, p in files.items()
        }
        assert (await host.client.post(f"/training/result/{session_id}/ack")).status_code == 200


async def test_a_run_that_kept_no_model_hands_back_its_result_without_one(host: Host) -> None:
    session_id, payload = await _completed_payload(host, _command_result(None))
    assert (payload.artifact, payload.model) == (None, None)
    assert payload.result["warnings"] == ["kept nothing"]
    response = await host.client.get(f"/training/result/{session_id}/model")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "result_not_available"
