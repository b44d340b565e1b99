"""A 2 GB table upload to a real uvicorn backend is refused at the limit while it streams: the server
answers 413 long before the client could have sent it all, and the data folder keeps no part of it."""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import backend_env, free_port, wait_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIMIT = 4 * 1024 * 1024
CLAIMED = 2 * 1024**3  # what the client means to send: 2 GiB
# Far above the limit plus what socket buffers hold, far below the 2 GiB: the server stopped reading
# at the limit, else it would still be consuming.
MAX_SENT = 256 * 1024 * 1024
BLOCK = 64 * 1024
DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    workdir = tmp_path_factory.mktemp("limits")
    data_dir = workdir / "data"
    port = free_port()
    env = backend_env(
        port,
        workdir,
        data_dir,
        MODELYARD_MAX_UPLOAD_BYTES=str(LIMIT),
        MODELYARD_GENERATE_SAMPLE_DATA="false",
    )
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.server"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 90.0, log=log)
        yield port, data_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _multipart_head(boundary: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\ntable\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.csv"\r\n'
        "Content-Type: text/csv\r\n\r\na,b\r\n"
    ).encode()


def _send_until_answered(port: int, head: bytes, *, chunked: bool) -> tuple[bytes, int]:
    """Stream up to CLAIMED bytes of rows; stop once the server answers. (answer, bytes sent)."""
    sent = 0
    row_block = b"1,2\n" * (BLOCK // 4)
    deadline = time.monotonic() + DEADLINE_S
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        while sent < CLAIMED and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            payload = f"{len(row_block):x}\r\n".encode() + row_block + b"\r\n" if chunked else row_block
            try:
                sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(row_block)
        sock.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            answer += sock.recv(65536)
    return answer, sent


def _request_head(port: int, boundary: str, length: str) -> bytes:
    return (
        f"POST /api/v1/data HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n{length}\r\n\r\n"
    ).encode()


def test_a_chunked_2gb_upload_is_refused_with_413_once_it_passes_the_limit(server: tuple[int, Path]) -> None:
    port, data_dir = server
    boundary = "lim1t"
    head = _request_head(port, boundary, "Transfer-Encoding: chunked")
    first = _multipart_head(boundary)
    head += f"{len(first):x}\r\n".encode() + first + b"\r\n"
    answer, sent = _send_until_answered(port, head, chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"payload_too_large" in answer
    assert b"MODELYARD_MAX_UPLOAD_BYTES" in answer
    assert LIMIT < sent < MAX_SENT
    assert not [p.name for p in data_dir.iterdir() if "huge" in p.name]


def test_a_declared_2gb_upload_is_refused_before_any_of_it_is_read(server: tuple[int, Path]) -> None:
    port, data_dir = server
    boundary = "lim1t"
    head = _request_head(port, boundary, f"Content-Length: {CLAIMED}") + _multipart_head(boundary)
    answer, sent = _send_until_answered(port, head, chunked=False)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert f"of {CLAIMED} bytes".encode() in answer
    assert sent < MAX_SENT
    assert not [p.name for p in data_dir.iterdir() if "huge" in p.name]
