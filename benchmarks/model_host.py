"""The host's half of a streamed hand-off, for benchmarks/handoff.py: a separate process serving one
weights file as the host service does (its signature middleware verifies the backend's request, the
file streams as a FileResponse, the answer is signed over the file's sha256 in ``X-Content-SHA256``).

    python benchmarks/model_host.py PORT SECRET MODEL_FILE

It serves ``GET /training/result/hs_bench/model`` and ``POST /training/result/hs_bench/ack`` (the
backend's acknowledgement, answered with the session view); anything unsigned is refused (401), as
by a host.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host_service.api.signatures import SignatureMiddleware, signed_result_headers
from host_service.api.training import ModelFileResponse
from shared.contracts.host import MODEL_SHA256_HEADER, SessionStatusName, SessionView
from shared.contracts.replay import ReplayGuard

SESSION = "hs_bench"


def model_host(secret: str, model: Path) -> FastAPI:
    # The host hashes its result when the training ends (its manifest); so does this stand-in, up front.
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    app = FastAPI()
    app.add_middleware(
        SignatureMiddleware,
        secrets=[secret],
        tolerance_s=300,
        max_body_bytes=1 << 20,
        replay=ReplayGuard(300),
    )

    @app.post(f"/training/result/{SESSION}/ack")
    async def acknowledge() -> SessionView:
        now = datetime.now(UTC)
        return SessionView(
            session_id=SESSION,
            operation_id="bench",
            status=SessionStatusName.COMPLETED,
            created_at=now,
            updated_at=now,
            result_available=True,
            result_acknowledged=True,
        )

    @app.get(f"/training/result/{SESSION}/model")
    async def session_model(request: Request) -> ModelFileResponse:
        signed = signed_result_headers(request, [secret], sha256)
        return ModelFileResponse(
            model, media_type="application/octet-stream", headers={MODEL_SHA256_HEADER: sha256, **signed}
        )

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # the readiness probe is unsigned: its 401 is expected
    port, secret, path = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    uvicorn.run(model_host(secret, path), host="127.0.0.1", port=port, log_level="warning")
