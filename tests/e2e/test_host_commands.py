"""Command trainings in host mode end to end: a real backend and a real host on 127.0.0.1, each with its
own commands folder (the host runs only its own templates) and its own working folder.

The test programs copy what they write into a witness folder the test reads, so the artefacts stored on
the backend are compared with the very bytes the program wrote on the host; the host's inline limit is
small (16 KiB), so one artefact set travels inline and a bigger one is streamed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.trainkit.workloads.command.process import group_members
from tests.e2e.host_cluster import (
    Api,
    Process,
    backend_process,
    host_get,
    host_process,
    live_sessions,
    start_all,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INLINE_LIMIT = 16 * 1024

WRITER_PY = """
import argparse, json, os, shutil, sys
parser = argparse.ArgumentParser()
parser.add_argument("--out"); parser.add_argument("--size", type=int); parser.add_argument("--witness")
parser.add_argument("--data")
args = parser.parse_args()
out = args.out
os.makedirs(os.path.join(out, "sub", "deep"), exist_ok=True)
with open(os.path.join(out, "weights.bin"), "wb") as f:
    f.write(os.urandom(args.size))
with open(os.path.join(out, "sub", "deep", "notes.txt"), "w") as f:
    f.write("written on the host\\n")
with open(os.path.join(out, "report.json"), "w") as f:
    data = open(args.data).read() if args.data else ""
    json.dump({"size": args.size, "data_lines": len(data.splitlines())}, f)
for step in range(1, 4):
    print(f"step: {step} loss: {1.0 / step}", flush=True)
run = os.path.join(args.witness, os.path.basename(os.path.dirname(out.rstrip("/"))))  # the session's run folder
shutil.copytree(out, run)
print("witness " + run, flush=True)
"""

SLEEPER_PY = """
import json, os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # deaf to a graceful stop, and so is its child
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(sys.argv[1], "w") as f:
    json.dump({"pid": os.getpid(), "pgid": os.getpgid(0), "child": child.pid}, f)
print("step: 1 loss: 1.0", flush=True)
time.sleep(600)
"""


def _templates(witness: Path) -> dict[str, str]:
    writer = {
        "name": "writer",
        "argv": [
            "{python}",
            "writer.py",
            "--out",
            "{output_dir}",
            "--size",
            "{size}",
            "--witness",
            str(witness),
            {"when": "dataset_path", "args": ["--data", "{dataset_path}"]},
        ],
        "params": {"size": {"type": "int", "default": 100, "min": 0, "max": 10_000_000}},
        "dataset": "optional",
        "artifacts": ["*.bin", "sub/**/*", "report.json"],
    }
    sleeper = {
        "name": "sleeper",
        "argv": ["{python}", "sleeper.py", str(witness / "sleeper.json")],
        "stop_grace_s": 60,  # more than the host's own stop grace (3 s): the host terminates its child first
    }
    empty = {
        "name": "empty",
        "argv": ["{python}", "writer.py", "--out", "{output_dir}", "--size", "1", "--witness", str(witness)],
        "artifacts": ["nothing/*"],
    }
    files = {f"{t['name']}.yaml": json.dumps(t) for t in (writer, sleeper, empty)}
    return {**files, "writer.py": WRITER_PY, "sleeper.py": SLEEPER_PY}


@dataclass
class Cluster:
    api: Api
    backend: Process
    host: Process
    witness: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("commands")
    witness = root / "witness"
    witness.mkdir()
    host = host_process(root / "host")
    host.env["MODELYARD_HOST_INLINE_MODEL_LIMIT_BYTES"] = str(INLINE_LIMIT)
    backend = backend_process(root / "backend", [host.url])
    for folder, names in ((host.folder / "work" / "commands", None), (backend.folder / "commands", "ghost")):
        folder.mkdir(parents=True)
        for name, text in _templates(witness).items():
            (folder / name).write_text(text)
        if names == "ghost":  # a command only the backend knows: the host must refuse it
            ghost = json.loads((folder / "writer.yaml").read_text()) | {"name": "ghost"}
            (folder / "ghost.yaml").write_text(json.dumps(ghost))
    (backend.folder / "data").mkdir()
    (backend.folder / "data" / "rows.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    (backend.folder / "data" / "folder").mkdir()
    (backend.folder / "data" / "folder" / "part.csv").write_text("a\n1\n")
    api = Api(backend)
    try:
        start_all([host, backend])
        wait_until(lambda: api.hosts_healthy(1), 20, "the host healthy")
        yield Cluster(api, backend, host, witness)
    finally:
        api.close()
        for process in (host, backend):
            process.kill()


def _train(api: Api, name: str, **command: Any) -> str:
    body = {"workload": "command", "command": {"name": name, **command}, "execution_mode": "host"}
    response = api.http.post("/api/v1/trainings", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _witnessed(cluster: Cluster) -> Path:
    """The copy the program made of its output folder on the host (named after its run folder)."""
    runs = [p for p in cluster.witness.iterdir() if p.is_dir() and p.name not in _seen]
    assert len(runs) == 1, runs
    _seen.add(runs[0].name)
    return runs[0]


_seen: set[str] = set()


@pytest.mark.parametrize(("size", "travel"), [(2_000, "inline"), (200_000, "streamed")])
def test_a_host_command_run_stores_exactly_the_files_its_program_wrote_on_the_host(
    cluster: Cluster, size: int, travel: str
) -> None:
    api = cluster.api
    op = api.finished(_train(api, "writer", params={"size": size}, dataset="rows.csv"))
    assert op["status"] == "completed", op
    assert op["execution_mode"] == "host"
    version = cluster.backend.folder / op["result"]["model"]["path"]
    metadata = json.loads((version / "metadata.json").read_text())
    written = _witnessed(cluster)
    expected = {
        p.relative_to(written).as_posix(): _sha256(p) for p in sorted(written.rglob("*")) if p.is_file()
    }
    assert set(expected) == {"weights.bin", "sub/deep/notes.txt", "report.json"}
    stored = {name.removeprefix("files/"): e["sha256"] for name, e in metadata["files"].items()}
    assert {name: stored[name] for name in expected} == expected
    assert {name: _sha256(version / "files" / name) for name in expected} == expected
    assert not (version / "model.pt").exists()
    assert json.loads((written / "report.json").read_text())["data_lines"] == 4  # the dataset reached it
    assert metadata["trained_on"] == "host"
    assert op["result"]["command"]["artifacts"] == sorted(expected)
    fetched = f"GET /training/result/{op['host_session_id']}/model" in cluster.host.log()
    assert fetched == (travel == "streamed"), travel
    session = host_get(cluster.host, f"/training/status/{op['host_session_id']}").json()
    assert session["result_acknowledged"]


def test_a_host_command_that_keeps_no_file_completes_with_the_warning_and_no_model(cluster: Cluster) -> None:
    api = cluster.api
    op = api.finished(_train(api, "empty"))
    _witnessed(cluster)
    assert op["status"] == "completed", op
    assert op["result"]["model"] is None
    assert any("no model version was stored" in w for w in op["result"]["warnings"])


def test_the_host_refuses_a_command_it_does_not_have_and_the_operation_says_why(cluster: Cluster) -> None:
    api = cluster.api
    op = api.finished(_train(api, "ghost"))
    assert op["status"] == "failed", op
    error = op["error"]
    assert error["code"] == "host_rejected"
    assert error["details"]["host_error"] == "command_not_found"
    assert "no command named 'ghost' in this host's commands folder" in error["message"]
    assert "HTTP 404" in error["message"]
    assert not live_sessions(cluster.host)


def test_a_command_dataset_folder_is_refused_in_host_mode_with_the_reason(cluster: Cluster) -> None:
    api = cluster.api
    op = api.finished(_train(api, "writer", dataset="folder"))
    assert op["status"] == "failed", op
    assert "not a single file" in op["error"]["message"]
    assert "execution_mode 'local'" in op["error"]["message"]


def test_cancel_of_a_host_command_run_leaves_no_process_of_its_group_alive(cluster: Cluster) -> None:
    """The program ignores SIGTERM and its template grants it more time than the host's stop grace: the
    host terminates its training child, which must take the program's whole group down with it."""
    api = cluster.api
    op_id = _train(api, "sleeper")
    pids_file = cluster.witness / "sleeper.json"
    wait_until(pids_file.is_file, 60, "the program to start on the host")
    pids = json.loads(pids_file.read_text())
    assert pids["pgid"] == pids["pid"]  # the program leads its own group, apart from the host's
    assert set(group_members(pids["pgid"])) >= {pids["pid"], pids["child"]}
    api.wait(op_id, lambda b: b["status"] == "running", "running")
    assert api.http.post(f"/api/v1/operations/{op_id}/cancel").json()["status"] == "cancelling"
    op = api.finished(op_id, timeout=30)
    assert op["status"] == "cancelled", op
    wait_until(lambda: not group_members(pids["pgid"]), 10, "every process of the group to be gone")
    wait_until(lambda: not live_sessions(cluster.host), 10, "the host slot to be free")
    assert "did not stop within" in cluster.host.log()  # the host's terminate() did the stopping
