"""A model of more than 100 MB arrives by reference: streamed to disk, checked and stored with the backend's
Python memory bounded well under twice the model size."""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import torch

from shared.trainkit.checkpoint import checkpoint_bytes
from shared.trainkit.models import MLPSpec, build_model
from tests.backend.host_fakes import result_payload
from tests.backend.host_harness import host_backend, host_settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MB = 1 << 20


def _big_checkpoint(path: Path) -> dict[str, Any]:
    torch.manual_seed(0)
    spec = MLPSpec(input_dim=2700, output_dim=2700, hidden_layers=[5000], dropout=0.0)
    config = {"model": spec.as_dict(), "training": {"epochs": 1}}
    state = build_model(spec).state_dict()
    path.write_bytes(checkpoint_bytes(state, model_class=spec.model_class, config=config))
    del state
    gc.collect()
    return config


async def test_a_100_mb_model_is_streamed_and_stored_with_bounded_memory(tmp_path: Path) -> None:
    model_file = tmp_path / "host" / "model.pt"
    model_file.parent.mkdir()
    config = _big_checkpoint(model_file)
    size = model_file.stat().st_size
    assert size >= 100 * MB
    async with host_backend(host_settings(tmp_path)) as backend:
        op_id = await backend.start_training()
        op = await backend.wait_for(op_id, lambda b: b["host_session_id"] is not None, "a host session")
        session_id = op["host_session_id"]
        url = f"/training/result/{session_id}/model"
        backend.hosts.models[url] = model_file
        body = result_payload(op_id, session_id, model_file, config, external_url=url)
        gc.collect()
        tracemalloc.start()
        try:
            response = await backend.post_result(body)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert response.status_code == 200, response.text
        stored = Path((await backend.operation(op_id))["result"]["model"]["path"]) / "model.pt"
        assert stored.stat().st_size == size
        assert _sha256(stored) == _sha256(model_file)
    assert peak < 1.5 * size, f"peak {peak / MB:.0f} MB for a {size / MB:.0f} MB model"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()
