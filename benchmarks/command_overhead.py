"""Command trainings, measured side by side in one run. Usage: python benchmarks/command_overhead.py

1. The sample program (commands/toy) run directly vs as a command training through the real backend
   (uvicorn, HTTP submit + poll; completion timed by the server's ``completed_at``), same arguments,
   in pairs whose order alternates (direct first, then the API first: a drift of the machine's speed
   weighs on both sides alike). Target: ratio <= 1.02. Also printed: the service's own time, i.e. the
   POST to completed minus the program's run as the service timed it (spawn to exit), which the
   program's run-to-run spread (several % on a shared machine) does not blur.
2. A chatty program printing 1,000,000 seed-004 lines as fast as it can, through the product's whole
   path (TrainingExecutor -> supervised process group -> reader thread -> parser, metric rows, output.log,
   the operation-log forwarder) vs the same program writing to /dev/null. Target: >= 200,000 lines/s.
3. Cancel of a program that ignores SIGTERM: seconds from cancel to the end of the run, beyond its
   ``stop_grace_s``. Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.backend_process import BackendProcess
from shared.contracts.training import CommandSpec, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import TrainingCancelledError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.command.catalog import write_sample_commands

LINES = 1_000_000
CHATTY = """import sys
block = "".join(f"step: {i} loss: 0.{i % 99991:05d} lr: 0.0001 val_loss: 0.612\\n" for i in range(10_000))
for _ in range(LINES // 10_000):
    sys.stdout.write(block)
""".replace("LINES", str(LINES))
STUBBORN = """import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("step: 1 loss: 1.0", flush=True)
time.sleep(600)
"""
TEMPLATES = {
    "chatty": "name: chatty\nargv: ['{python}', chatty.py]\nartifacts: ['*.none']\n",
    "stubborn": "name: stubborn\nargv: ['{python}', stubborn.py]\nstop_grace_s: 2\n",
}


def toy_args(steps: int) -> list[str]:
    return ["--steps", str(steps), "--val-every", "100", "--checkpoint-every", "200"]


def direct_toy(commands: Path, out: Path, steps: int) -> float:
    argv = [sys.executable, "toy_train.py", *toy_args(steps), "--out", str(out)]
    started = time.perf_counter()
    subprocess.run(argv, cwd=commands, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def api_toy(client: httpx.Client, steps: int) -> tuple[float, float]:
    """Seconds from the POST to completed, and of those the seconds outside the program's run."""
    body = {"workload": "command", "command": {"name": "toy", "params": {"steps": steps, "val_every": 100}}}
    started = time.time()
    op_id = client.post("/api/v1/trainings", json=body).json()["operation_id"]
    while time.time() < started + 600:
        op = client.get(f"/api/v1/operations/{op_id}").json()
        if op["status"] in ("completed", "failed", "cancelled"):
            if op["status"] != "completed":
                raise RuntimeError(f"operation {op_id} ended {op['status']}: {op.get('error')}")
            elapsed = datetime.fromisoformat(op["completed_at"]).timestamp() - started
            telemetry = client.get(f"/api/v1/operations/{op_id}/metrics").json()["telemetry"]
            return elapsed, elapsed - telemetry["command.exit"]["total_s"]
        time.sleep(0.5)
    raise RuntimeError("the command training did not finish within 600 s")


def compare_toy(root: Path, runs: int, steps: int) -> None:
    commands = root / "commands"
    write_sample_commands(commands)
    server = BackendProcess(
        root / "api",
        root / "data",
        MODELYARD_COMMANDS_DIR=str(commands),
        MODELYARD_GENERATE_SAMPLE_DATA="false",
    )
    direct: list[float] = []
    api: list[float] = []
    service: list[float] = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            api_toy(client, 10)
            direct_toy(commands, root / "warm", 10)
            for pair in range(runs):
                if pair % 2:
                    elapsed, outside = api_toy(client, steps)
                    direct.append(direct_toy(commands, root / "direct", steps))
                else:
                    direct.append(direct_toy(commands, root / "direct", steps))
                    elapsed, outside = api_toy(client, steps)
                api.append(elapsed)
                service.append(outside)
    finally:
        server.stop()
    d, a = statistics.median(direct), statistics.median(api)
    # Each API run is paired with the direct run beside it: the pairs share the machine's state of
    # the moment, so their ratios' median shrugs off a slow minute that the medians of the sides do not.
    paired = statistics.median(x / y for x, y in zip(api, direct, strict=True))
    own = statistics.median(service)
    print(f"1. toy, {steps} steps, {runs} pairs, direct and API first in turn")
    print(f"   direct          median {d:.3f} s  runs {[round(x, 3) for x in direct]}")
    print(f"   command via API median {a:.3f} s  runs {[round(x, 3) for x in api]}")
    print(f"   ratio of medians {a / d:.3f}; median of paired ratios {paired:.3f} (target <= 1.02)")
    print(
        f"   the service's own time (POST to completed minus the program's spawn to exit): median "
        f"{own * 1000:.0f} ms = {own / d:.2%} of the direct run  runs {[round(x * 1000) for x in service]}"
    )


def executor(root: Path) -> TrainingExecutor:
    commands = root / "bench-commands"
    commands.mkdir(exist_ok=True)
    (commands / "chatty.py").write_text(CHATTY)
    (commands / "stubborn.py").write_text(STUBBORN)
    for name, text in TEMPLATES.items():
        (commands / f"{name}.yaml").write_text(text)
    return TrainingExecutor(
        root / "data", ModelStorage(root / "models"), run_root=root / "runs", commands_dir=commands
    )


def chatty_throughput(root: Path) -> None:
    runner = executor(root)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "chatty.py"], cwd=root / "bench-commands", check=True, stdout=subprocess.DEVNULL
    )
    direct = time.perf_counter() - started
    request = TrainingRequest(workload="command", command=CommandSpec(name="chatty"))
    started = time.perf_counter()
    result = runner.execute(request, lambda _u: None, CancelToken(), run_name="chatty")
    managed = time.perf_counter() - started
    lines = result.command["lines"]
    print(f"2. chatty program, {lines:,} lines ({result.command['lines_with_metrics']:,} with metrics)")
    print(
        f"   to /dev/null {direct:.3f} s; as a command training {managed:.3f} s; ratio {managed / direct:.2f}"
    )
    print(f"   {lines / managed:,.0f} lines/s through parser and log writer (target >= 200,000)")
    print(
        f"   history kept {len(result.history):,} rows; output.log {(root / 'runs/chatty/output.log').stat().st_size:,} B"
    )


def stubborn_cancel(root: Path) -> None:
    runner = executor(root)
    token = CancelToken()
    ended: list[float] = []

    def run() -> None:
        try:
            runner.execute(
                TrainingRequest(workload="command", command=CommandSpec(name="stubborn")),
                lambda _u: None,
                token,
            )
        except TrainingCancelledError:
            ended.append(time.perf_counter())

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(3.0)  # well into the program's sleep
    cancelled_at = time.perf_counter()
    token.cancel("benchmark")
    thread.join(60)
    took = ended[0] - cancelled_at
    print(
        f"3. cancel of a program ignoring SIGTERM (stop_grace_s 2): {took:.3f} s, {took - 2:.3f} s past the grace"
    )
    print("   (target <= 1 s past the grace)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=8, help="pairs of runs (direct, API)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--parts", default="1,2,3", help="which measurements to run, e.g. --parts 2")
    args = parser.parse_args()
    parts = {int(part) for part in args.parts.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        if 1 in parts:
            compare_toy(root, args.runs, args.steps)
        if 2 in parts:
            chatty_throughput(root)
        if 3 in parts:
            stubborn_cancel(root)


if __name__ == "__main__":
    main()
