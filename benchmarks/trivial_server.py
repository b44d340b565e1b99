"""The yardstick for benchmarks/poll_load.py: a one-route FastAPI app under the same uvicorn defaults as
the backend (one process, log level warning). ``python benchmarks/trivial_server.py PORT``."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
