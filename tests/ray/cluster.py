"""A real local Ray cluster for the ray-mode tests: ``ray start --head`` on loopback with free ports and a
temp dir of its own, stopped at the end by its process group (never ``ray stop``, which would stop every
cluster of this user on the machine). Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import free_port
from tests.services import service_missing

START_DEADLINE_S = 120.0


@dataclass
class LocalRay:
    address: str  # the Jobs API (dashboard), http://127.0.0.1:PORT
    temp_dir: Path
    pgid: int

    def processes(self) -> list[tuple[int, int, str]]:
        """(pid, rss KiB, command) of every process of this cluster (its process group)."""
        out = subprocess.run(
            ["ps", "-ww", "-eo", "pid=,pgid=,rss=,args="], capture_output=True, text=True, check=True
        )
        found = []
        for line in out.stdout.splitlines():
            pid, pgid, rss, args = line.split(None, 3)
            if int(pgid) == self.pgid or str(self.temp_dir) in args:
                found.append((int(pid), int(rss), args[:120]))
        return found

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid, _, _ in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)


def ray_executable() -> Path:
    if importlib.util.find_spec("ray") is None:
        service_missing("ray is not installed here: pip install 'modelyard[ray]' (the dev extra includes it)")
    return Path(sys.executable).parent / "ray"


def start_local_ray() -> LocalRay:
    ray = ray_executable()
    # Short: Ray's socket paths live under it and must stay below the 107-byte limit of AF_UNIX.
    temp_dir = Path(tempfile.mkdtemp(prefix="mray-", dir="/tmp"))
    dashboard = free_port()
    command = [
        str(ray), "start", "--head", "--node-ip-address", "127.0.0.1",
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--port", str(free_port()), "--ray-client-server-port", str(free_port()),
        "--num-cpus", "2", "--num-gpus", "0", "--temp-dir", str(temp_dir),
        "--disable-usage-stats", "--include-dashboard", "true",
    ]  # fmt: skip
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    starter = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    cluster = LocalRay(f"http://127.0.0.1:{dashboard}", temp_dir, starter.pid)
    try:
        output, _ = starter.communicate(timeout=START_DEADLINE_S)
        if starter.returncode != 0:
            raise AssertionError(f"ray start failed ({starter.returncode}):\n{output.decode()[-3000:]}")
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            try:
                if httpx.get(cluster.address + "/api/version", timeout=2).status_code == 200:
                    return cluster
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the Ray dashboard at {cluster.address} did not answer in time")
            time.sleep(0.3)
    except BaseException:
        starter.kill()
        cluster.stop()
        raise
