"""Training data from the backend: downloaded once, checked, cached by sha256, linked per session.

The host shares no filesystem with the backend; the cache (``{work_dir}/cache/{sha256}``) makes a second
training on the same data free, and each session gets a private ``data/`` folder of links into it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from host_service.domain.ports import BackendClient
from host_service.errors import DatasetError

logger = logging.getLogger(__name__)


class DatasetCache:
    def __init__(self, cache_dir: Path, client: BackendClient) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._client = client
        self._locks: dict[str, asyncio.Lock] = {}

    async def provide(self, datasets: Sequence[dict[str, Any]], data_dir: Path) -> None:
        """Make every dataset appear as ``data_dir/{filename}``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        for dataset in datasets:
            cached = await self.fetch(dataset["url"], dataset["sha256"])
            _link(cached, data_dir / dataset["filename"])

    async def fetch(self, url: str, sha256: str) -> Path:
        """The cached file with digest ``sha256``, downloading it from ``url`` if absent."""
        cached = self.cache_dir / sha256
        async with self._locks.setdefault(sha256, asyncio.Lock()):
            if cached.is_file():
                logger.info("dataset %s served from the cache", sha256[:12])
                return cached
            partial = self.cache_dir / f".{sha256}.{uuid.uuid4().hex}.part"
            try:
                actual = await self._client.download(url, partial)
                if actual != sha256:
                    raise DatasetError(
                        f"dataset from {url} has sha256 {actual}, but the backend announced {sha256}; "
                        "the file changed or was corrupted in transit, start the training again",
                        url=url,
                        expected=sha256,
                        actual=actual,
                    )
                os.replace(partial, cached)
            finally:
                partial.unlink(missing_ok=True)
            logger.info("dataset %s downloaded from %s", sha256[:12], url)
            return cached


def _link(cached: Path, target: Path) -> None:
    """A hard link (the session keeps its data even if the cache is pruned); a copy across devices."""
    target.unlink(missing_ok=True)
    try:
        os.link(cached, target)
    except OSError:
        shutil.copyfile(cached, target)
