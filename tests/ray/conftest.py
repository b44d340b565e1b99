"""One local Ray cluster for the whole session (started by the tests on loopback, stopped at the end)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ray.cluster import LocalRay, start_local_ray


@pytest.fixture(scope="session")
def local_ray() -> Iterator[LocalRay]:
    cluster = start_local_ray()
    try:
        yield cluster
    finally:
        cluster.stop()
