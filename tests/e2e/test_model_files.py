"""Models any tool can read, through a real backend on 127.0.0.1: a trained version downloads as
``model.safetensors`` that plain safetensors loads, exports to ONNX that onnxruntime runs like torch
(API and CLI), an old ``model.pt`` version still downloads and exports, and what cannot be exported
gets a 422 saying why.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from backend.cli import cli
from backend.cli.options import CliEnv
from shared.trainkit.checkpoint import checkpoint_bytes
from shared.trainkit.executor.types import ModelArtifact
from shared.trainkit.model_file import weights_bytes
from shared.trainkit.models import MLPSpec, build_model
from shared.trainkit.storage import ModelStorage
from tests.servers import backend_env, free_port, wait_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START_DEADLINE_S = 120.0
TOLERANCE = 1e-5
LEGACY_SPEC = MLPSpec(input_dim=5, output_dim=3, hidden_layers=[8])


@dataclass
class Server:
    url: str
    models: Path
    client: httpx.Client


def _seed_store(models: Path) -> None:
    """Versions written before the server starts: an old model.pt, a command's files, a plugin."""
    store = ModelStorage(models)
    legacy = build_model(LEGACY_SPEC, generator=torch.Generator().manual_seed(4))
    config: dict[str, Any] = {"model": LEGACY_SPEC.as_dict()}
    store.save(_artifact("trend_momentum", "LEGACY_1h", checkpoint_bytes(legacy.state_dict(), model_class="MLP", config=config), config))  # fmt: skip
    produced = models.parent / "out.bin"
    produced.write_bytes(b"written by the user's program")
    store.save(_artifact("toy_train", "run", b"", {}, workload="command", files={"out.bin": produced}))
    plugin_config = {"plugin": "pkg.mod:make", "model": {"model_class": "pkg.mod.Net"}}
    plugin_weights = weights_bytes({"w": torch.ones(2)}, model_class="pkg.mod.Net", config=plugin_config)
    store.save(_artifact("plugin", "pkg.mod-make", plugin_weights, plugin_config, workload="plugin"))


def _artifact(
    strategy: str,
    name: str,
    model_bytes: bytes,
    config: dict[str, Any],
    *,
    workload: str = "strategy",
    files: dict[str, Path] | None = None,
) -> ModelArtifact:
    return ModelArtifact(
        strategy=strategy,
        name=name,
        model_bytes=model_bytes,
        config=config,
        metrics={},
        features={},
        metadata={"workload": workload},
        files=files or {},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("backend")
    (root / "data").mkdir()
    _seed_store(root / "models")
    port = free_port()
    env = backend_env(port, root, root / "data", MODELYARD_LOG_LEVEL="WARNING")
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.server"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, START_DEADLINE_S, log=log)
        with httpx.Client(base_url=url, timeout=60) as client:
            yield Server(url=url, models=root / "models", client=client)
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def trained(server: Server) -> dict[str, Any]:
    """One real strategy training through the API; its result's model reference."""
    body = {"strategy": "trend_momentum", "symbol": "EURUSD", "timeframe": "1h", "overrides": {"epochs": 1}}
    response = server.client.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    op_id = response.json()["operation_id"]
    deadline = time.monotonic() + 300
    op: dict[str, Any] = {}
    while time.monotonic() < deadline:
        op = server.client.get(f"/api/v1/operations/{op_id}").json()
        if op["status"] in {"completed", "failed", "cancelled", "interrupted"}:
            break
        time.sleep(0.2)
    assert op.get("status") == "completed", op
    model: dict[str, Any] = op["result"]["model"]
    return model


def _version_url(strategy: str, name: str, version: int) -> str:
    return f"/api/v1/models/{strategy}/{name}/versions/{version}"


def _zip_files(server: Server, strategy: str, name: str, version: int) -> dict[str, bytes]:
    response = server.client.get(_version_url(strategy, name, version) + "/download")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {Path(n).name: archive.read(n) for n in archive.namelist()}


def _onnx_vs_torch(
    onnx_bytes: bytes, module: torch.nn.Module, width: int, normalization: dict[str, Any] | None = None
) -> float:
    """The graph on raw features against the network on the same features standardised as
    features.json says (a version stored without normalisation: identity)."""
    mean = np.asarray(normalization["mean"]) if normalization else np.zeros(width)
    std = np.asarray(normalization["std"]) if normalization else np.ones(width)
    x = (np.random.default_rng(0).normal(size=(64, width)) * std + mean).astype(np.float32)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"features": x})
    z = ((x.astype(np.float64) - mean) / std).astype(np.float32)
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(z)).numpy()
    return float(np.max(np.abs(got - expected)))


def _module_from_download(files: dict[str, bytes], tmp_path: Path) -> torch.nn.Module:
    """The network rebuilt as a user would: config.json's spec + plain ``safetensors`` weights."""
    (tmp_path / "model.safetensors").write_bytes(files["model.safetensors"])
    state = load_file(str(tmp_path / "model.safetensors"))
    module = build_model(json.loads(files["config.json"])["model"])
    module.load_state_dict(state, strict=True)
    return module


def test_a_trained_version_downloads_as_safetensors_that_plain_load_file_reads(
    server: Server, trained: dict[str, Any], tmp_path: Path
) -> None:
    files = _zip_files(server, trained["strategy"], trained["name"], trained["version"])
    assert "model.safetensors" in files
    assert "model.pt" not in files
    module = _module_from_download(files, tmp_path)
    assert sum(p.numel() for p in module.parameters()) > 0


def test_the_onnx_download_runs_in_onnxruntime_like_torch(
    server: Server, trained: dict[str, Any], tmp_path: Path
) -> None:
    url = _version_url(trained["strategy"], trained["name"], trained["version"]) + "/onnx"
    response = server.client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].endswith('.onnx"')
    files = _zip_files(server, trained["strategy"], trained["name"], trained["version"])
    module = _module_from_download(files, tmp_path)
    normalization = json.loads(files["features.json"])["normalization"]
    width = module.spec.input_dim  # type: ignore[union-attr]
    assert _onnx_vs_torch(response.content, module, width, normalization) <= TOLERANCE


def test_a_version_stored_as_model_pt_still_downloads_and_exports(server: Server) -> None:
    files = _zip_files(server, "trend_momentum", "LEGACY_1h", 1)
    assert "model.pt" in files
    response = server.client.get(_version_url("trend_momentum", "LEGACY_1h", 1) + "/onnx")
    assert response.status_code == 200, response.text
    legacy = build_model(LEGACY_SPEC, generator=torch.Generator().manual_seed(4))
    assert _onnx_vs_torch(response.content, legacy, LEGACY_SPEC.input_dim) <= TOLERANCE


@pytest.mark.parametrize(
    ("strategy", "name", "words"),
    [
        ("toy_train", "run", "command training"),
        ("plugin", "pkg.mod-make", "plugin model"),
    ],
)
def test_what_onnx_cannot_express_gets_a_422_saying_why(
    server: Server, strategy: str, name: str, words: str
) -> None:
    response = server.client.get(_version_url(strategy, name, 1) + "/onnx")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "model_not_exportable"
    assert words in error["message"]


def test_an_unknown_version_is_a_404_naming_it(server: Server) -> None:
    response = server.client.get(_version_url("trend_momentum", "LEGACY_1h", 9) + "/onnx")
    assert response.status_code == 404
    assert response.json()["error"]["message"]


def test_openapi_declares_the_onnx_body_as_octet_stream(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/models/{strategy}/{name}/versions/{version}/onnx"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["application/octet-stream"]
    assert {"404", "422", "503"} <= set(operation["responses"])


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(
        cli,
        args,
        obj=CliEnv(poll_interval_s=0.0),
        env={"COLUMNS": "200", "NO_COLOR": "1", "MODELYARD_SERVER": None, "MODELYARD_TOKEN": None},
        catch_exceptions=False,
    )


def test_cli_export_writes_an_onnx_file_from_the_server_and_from_the_local_store(
    server: Server, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.onnx"
    result = _cli(["models", "export", "trend_momentum", "LEGACY_1h", "1", "--onnx", "-o", str(remote),
                   "--server", server.url])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"wrote {remote}" in result.stdout
    local = tmp_path / "local.onnx"
    result = _cli(["models", "export", "trend_momentum", "LEGACY_1h", "1", "--onnx", "-o", str(local),
                   "--models-dir", str(server.models)])  # fmt: skip
    assert result.exit_code == 0, result.output
    legacy = build_model(LEGACY_SPEC, generator=torch.Generator().manual_seed(4))
    for path in (remote, local):
        assert _onnx_vs_torch(path.read_bytes(), legacy, LEGACY_SPEC.input_dim) <= TOLERANCE


def test_cli_export_of_a_plugin_model_exits_2_saying_why_and_writes_nothing(
    server: Server, tmp_path: Path
) -> None:
    target = tmp_path / "plugin.onnx"
    for where in (["--server", server.url], ["--models-dir", str(server.models)]):
        result = _cli(
            ["models", "export", "plugin", "pkg.mod-make", "1", "--onnx", "-o", str(target), *where]
        )
        assert result.exit_code == 2, result.output
        assert "plugin model" in result.stderr
        assert "Traceback" not in result.output
        assert not target.exists()
        assert not list(tmp_path.glob(".*.part"))


def test_cli_export_without_a_format_asks_for_one(tmp_path: Path) -> None:
    result = _cli(["models", "export", "trend_momentum", "X_1h", "1", "--models-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--onnx" in result.output
