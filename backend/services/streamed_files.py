"""Receiving a file streamed in a request body: size-capped while it arrives, checked against the
sha256 (and size) announced for it, and put in place atomically, so a cut connection, a bad digest or a
crash mid-way leaves whatever was at the target before untouched."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from backend.errors import BackendError, PayloadTooLargeError
from shared.trainkit.storage.durable_files import fsync_dir


async def receive_file(
    chunks: AsyncIterator[bytes],
    target: Path,
    *,
    sha256: str,
    limit: int,
    limit_setting: str,
    rejected: type[BackendError],
    size: int | None = None,
) -> int:
    """Stream ``chunks`` to ``target``; return the size. More than ``limit`` bytes: PayloadTooLargeError
    (naming ``limit_setting``) as soon as it is exceeded; a digest or size other than announced:
    ``rejected``. Either way the partial file is removed and ``target`` is as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    digest, received = hashlib.sha256(), 0
    try:
        with part.open("wb") as sink:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise PayloadTooLargeError(
                        f"upload exceeds {limit} bytes ({limit_setting})", limit=limit, size=size
                    )
                digest.update(chunk)
                sink.write(chunk)
            sink.flush()
            os.fsync(sink.fileno())
        if size is not None and received != size:
            raise rejected(
                f"upload was cut short or overlong: {received} bytes received, {size} announced",
                size=size,
                received=received,
            )
        if digest.hexdigest() != sha256:
            raise rejected(f"uploaded bytes have sha256 {digest.hexdigest()}, announced {sha256}")
        os.replace(part, target)
        fsync_dir(target.parent)
    finally:
        part.unlink(missing_ok=True)
    return received
