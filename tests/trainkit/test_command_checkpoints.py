"""A command's own checkpoints: declared by its template, kept by modelyard while it runs, handed back
through ``resume_argv`` when a retry resumes — with real programs, the shipped sample included."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from shared.contracts.host import CheckpointRef, checkpoint_label, newest_checkpoint
from shared.contracts.training import CommandSpec, TrainingRequest
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.errors import CommandRunError, ConfigError
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.executor.workload import CheckpointPolicy
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.command.arguments import build_invocation
from shared.trainkit.workloads.command.checkpoints import (
    CheckpointKeeper,
    command_checkpoints,
    newest_command_checkpoint,
)
from shared.trainkit.workloads.command.process import start_ticks
from shared.trainkit.workloads.command.template import parse_template
from tests.trainkit.command_programs import copy_samples, write_command, write_program

BASE = "name: c\nargv: ['{python}', train.py]\n"

#: Counts to --steps (one line each, a checkpoint file every 10 steps holding the step); --fail-at N
#: exits 3 at step N; --resume FILE starts after the step the file holds.
COUNTER = """
import argparse, os, sys, time
from pathlib import Path
parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=60)
parser.add_argument("--fail-at", type=int, default=0)
parser.add_argument("--resume", type=Path)
parser.add_argument("--out", type=Path, required=True)
args = parser.parse_args()
first = int(args.resume.read_text()) + 1 if args.resume else 1
print(f"argv: {' '.join(sys.argv[1:])}", flush=True)
for step in range(first, args.steps + 1):
    print(f"step: {step} loss: {1 / step:.6f}", flush=True)
    if step == args.fail_at:
        sys.exit(3)
    if step % 10 == 0:
        partial = args.out / "ckpt.txt.partial"
        partial.write_text(str(step))
        os.replace(partial, args.out / "ckpt.txt")
        time.sleep(0.7)  # two looks of the keeper: the file settles
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("resume_argv: [--resume]\ncheckpoints: ck.pt\n", "name the checkpoint file with {checkpoint}"),
        ("resume_argv: [--resume, '{checkpoint}']\n", "resume_argv needs 'checkpoints'"),
        ("checkpoints: ck.pt\n", "checkpoints needs 'resume_argv'"),
        ("checkpoints: ../ck.pt\nresume_argv: ['{checkpoint}']\n", "must stay inside {output_dir}"),
        ("checkpoints: ck.pt\nresume_argv: ['{chekpoint}']\n", "unknown placeholder {chekpoint}"),
        ("params: {checkpoint: {type: int, default: 1}}\n", "param name 'checkpoint'"),
    ],
)
def test_a_template_with_inconsistent_checkpoint_fields_is_refused_naming_them(
    extra: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_template(BASE + extra, "c.yaml")
    assert message in caught.value.message


def test_checkpoint_is_a_placeholder_of_resume_argv_only() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder \{checkpoint\}"):
        parse_template("name: c\nargv: ['{python}', '{checkpoint}']\n", "c.yaml")


def test_a_resumed_invocation_appends_resume_argv_with_the_checkpoint(tmp_path: Path) -> None:
    template = parse_template(
        BASE + "checkpoints: 'ck/*.pt'\nresume_argv: [--resume, '{checkpoint}', --tag, '{run_name}']\n",
        "c.yaml",
    )
    args = dict(output_dir=tmp_path / "out", dataset_path=None, run_name="r1")
    plain = build_invocation(template, tmp_path, {}, **args)  # type: ignore[arg-type]
    resumed = build_invocation(template, tmp_path, {}, checkpoint=tmp_path / "k.pt", **args)  # type: ignore[arg-type]
    assert resumed.argv == [*plain.argv, "--resume", str(tmp_path / "k.pt"), "--tag", "r1"]


def keeper(out: Path, dest: Path, step: list[int], **kwargs: Any) -> CheckpointKeeper:
    return CheckpointKeeper(out, "*.ck", dest, step=lambda: step[0], **kwargs)


def test_the_keeper_copies_a_settled_file_once_and_keeps_the_last_two(tmp_path: Path) -> None:
    out, dest, step = tmp_path / "out", tmp_path / "kept", [10]
    out.mkdir()
    keep = keeper(out, dest, step, keep_last=2, min_interval_s=0)
    (out / "a.ck").write_text("10")
    keep.look()
    assert command_checkpoints(dest) == []  # seen once: it may still be being written
    keep.look()
    keep.look()
    assert [(p.name, s) for p, s in command_checkpoints(dest)] == [("step-000000010-a.ck", 10)]
    for value in (20, 30):
        step[0] = value
        (out / "a.ck").write_text(str(value) * 2)  # a new version: new size, new mtime
        keep.look()
        keep.look()
    kept = command_checkpoints(dest)
    assert [s for _, s in kept] == [30, 20]
    assert kept[0][0].read_text() == "3030"
    assert keep.kept == 3
    assert not list(dest.glob(".*partial"))


def test_the_keeper_honours_the_minimum_interval_but_a_final_look_keeps_the_newest(tmp_path: Path) -> None:
    out, dest, step = tmp_path / "out", tmp_path / "kept", [1]
    out.mkdir()
    keep = keeper(out, dest, step, min_interval_s=3600)
    (out / "a.ck").write_text("1")
    keep.look()
    keep.look()
    assert keep.kept == 1  # the first copy is always due
    step[0] = 2
    (out / "a.ck").write_text("22")
    keep.look()
    keep.look()
    assert keep.kept == 1
    keep.stop(final_look=True)
    assert newest_command_checkpoint(dest) == (dest / "step-000000002-a.ck", 2)


def test_a_copy_that_fails_logs_a_warning_and_the_training_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, dest = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    dest.write_text("a file where the folder should be")
    keep = keeper(out, dest, [5], min_interval_s=0)
    (out / "a.ck").write_text("5")
    keep.look()
    with caplog.at_level(logging.WARNING):
        keep.look(final=True)
    assert keep.kept == 0
    assert "checkpoint a.ck not kept" in caplog.text


def test_a_file_first_seen_after_the_program_ended_is_not_labelled_with_a_guess(tmp_path: Path) -> None:
    out, dest = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    keep = keeper(out, dest, [600], min_interval_s=0)
    keep.look()
    (out / "a.ck").write_text("400")  # written between the last look and the end: its step is unknown
    keep.stop(final_look=True)
    assert command_checkpoints(dest) == []


def test_a_declared_checkpoint_is_labelled_with_the_programs_step(tmp_path: Path) -> None:
    out, dest, printed = tmp_path / "out", tmp_path / "kept", [600]
    (out / "ckpt").mkdir(parents=True)
    keep = keeper(out, dest, printed, min_interval_s=0)
    (out / "ckpt" / "last.pt").write_text("400")
    keep.declare("ckpt/last.pt", 400)  # said late: the program had printed step 600 meanwhile
    keep.look()
    assert [(p.name, s) for p, s in command_checkpoints(dest)] == [("step-000000400-last.pt", 400)]
    (out / "other.ck").write_text("x")  # a glob match the program did not declare: no longer inferred
    keep.look()
    keep.look()
    keep.stop(final_look=True)
    assert [s for _, s in command_checkpoints(dest)] == [400]


@pytest.mark.parametrize(
    ("file_name", "kept"),
    [
        ("my ckpt (1).pt", "step-000000400-my_ckpt__1_.pt"),
        ("poids-é.pt", "step-000000400-poids-_.pt"),
        ("x" * 200 + ".pt", "step-000000400-" + "x" * 125 + ".pt"),  # the end kept, with the extension
    ],
)
def test_a_kept_copy_is_named_in_the_wire_s_form_so_it_can_ship(
    tmp_path: Path, file_name: str, kept: str
) -> None:
    """A host or a Ray job ships the kept copy under its name; the checkpoint routes accept only
    ``step-NNNNNNNNN-[A-Za-z0-9._-]{1,128}``, so the program's own name is made to fit."""
    out, dest = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    keep = keeper(out, dest, [0], min_interval_s=0)
    (out / file_name).write_text("400")
    keep.declare(file_name, 400)
    keep.look()
    [(copy, step)] = command_checkpoints(dest)
    assert (copy.name, step, copy.read_text()) == (kept, 400, "400")
    assert checkpoint_label(copy.name) == ("step", 400)
    assert newest_checkpoint(dest) == (copy, 400)  # what the shippers pick
    CheckpointRef(url="http://b/x", epoch=400, sha256="0" * 64, size=3, name=copy.name)  # the wire takes it


def test_a_declared_file_rewritten_before_its_copy_waits_for_its_own_line(tmp_path: Path) -> None:
    out, dest = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    keep = keeper(out, dest, [0], min_interval_s=0)
    (out / "last.ck").write_text("400")
    keep.declare("last.ck", 400)
    (out / "last.ck").write_text("step 600")  # the next checkpoint, its line not read yet
    keep.look()
    assert command_checkpoints(dest) == []  # never 600's bytes labelled 400
    keep.declare("last.ck", 600)
    keep.look()
    assert [(p.read_text(), s) for p, s in command_checkpoints(dest)] == [("step 600", 600)]


@pytest.mark.parametrize("path", ["../secret.ck", "/etc/hostname", "link.ck", "missing.ck", ""])
def test_a_declared_path_outside_the_output_folder_is_refused_with_one_warning(
    tmp_path: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    out, dest = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    (tmp_path / "secret.ck").write_text("not yours")
    (out / "link.ck").symlink_to(tmp_path / "secret.ck")
    keep = keeper(out, dest, [1], min_interval_s=0)
    with caplog.at_level(logging.WARNING):
        keep.declare(path, 1)
        keep.declare(path, 2)
    keep.stop(final_look=True)
    assert command_checkpoints(dest) == []
    assert caplog.text.count("checkpoint line ignored") == 1


def test_a_symlink_out_of_the_output_folder_is_never_copied(tmp_path: Path) -> None:
    out, dest = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    secret = tmp_path / "secret.ck"
    secret.write_text("not yours")
    (out / "link.ck").symlink_to(secret)
    keeper(out, dest, [1], min_interval_s=0).look(final=True)
    assert command_checkpoints(dest) == []


def executor(root: Path, commands: Path) -> TrainingExecutor:
    return TrainingExecutor(
        root / "data",
        ModelStorage(root / "models"),
        run_root=root / "runs",
        commands_dir=commands,
        checkpoints=CheckpointPolicy(min_interval_s=0),
    )


def test_a_failed_run_keeps_its_checkpoint_and_a_resumed_run_continues_after_it(tmp_path: Path) -> None:
    commands = tmp_path / "commands"
    write_program(commands, "train.py", COUNTER)
    write_command(
        commands,
        "counter",
        "train.py",
        args=["--steps", "{steps}", "--fail-at", "{fail_at}", "--out", "{output_dir}"],
        params={"steps": {"type": "int", "default": 35}, "fail_at": {"type": "int", "default": 0}},
        artifacts=["ckpt.txt"],
        checkpoints="ckpt.txt",
        resume_argv=["--resume", "{checkpoint}"],
    )
    (tmp_path / "data").mkdir()
    runner = executor(tmp_path, commands)

    def request(fail_at: int) -> TrainingRequest:
        spec = CommandSpec(name="counter", params={"fail_at": fail_at})
        return TrainingRequest(workload="command", command=spec)

    with pytest.raises(CommandRunError):
        runner.execute(request(25), lambda _u: None, CancelToken(), run_name="r")
    kept = newest_command_checkpoint(tmp_path / "runs" / "r" / "checkpoints")
    assert kept is not None
    assert kept[0].read_text() == "20"
    assert 20 <= kept[1] <= 25  # the step printed when the file was first seen

    updates: list[Any] = []
    result = runner.execute(request(0), updates.append, CancelToken(), run_name="r", resume=True)
    assert result.resumed_from_epoch == kept[1]
    assert [row["step"] for row in result.history] == list(range(21, 36))
    assert f"--resume {kept[0]}" in (tmp_path / "runs" / "r" / "output.log").read_text()
    assert any("resuming from step" in u.message for u in updates)


def test_a_run_resumed_without_a_kept_checkpoint_starts_from_the_beginning(tmp_path: Path) -> None:
    commands = tmp_path / "commands"
    write_program(commands, "train.py", COUNTER)
    write_command(
        commands,
        "counter",
        "train.py",
        args=["--steps", "5", "--out", "{output_dir}"],
        checkpoints="ckpt.txt",
        resume_argv=["--resume", "{checkpoint}"],
    )
    (tmp_path / "data").mkdir()
    updates: list[Any] = []
    result = executor(tmp_path, commands).execute(
        TrainingRequest(workload="command", command=CommandSpec(name="counter")),
        updates.append,
        CancelToken(),
        run_name="r",
        resume=True,
    )
    assert result.resumed_from_epoch == 0
    assert [row["step"] for row in result.history] == [1, 2, 3, 4, 5]
    # A retry all the same: it says it starts from scratch (the backend replaces the lost steps), once,
    # before any row of its own.
    said = [i for i, u in enumerate(updates) if "resumed_from_epoch" in u.extra]
    assert [updates[i].extra["resumed_from_epoch"] for i in said] == [0]
    rows = [i for i, u in enumerate(updates) if u.extra.get("metric_rows")]
    assert rows
    assert said[0] < rows[0]


def test_the_sample_resumed_from_its_checkpoint_ends_with_the_same_weights_as_straight(
    tmp_path: Path,
) -> None:
    commands = copy_samples(tmp_path / "commands")
    (tmp_path / "data").mkdir()
    runner = executor(tmp_path, commands)
    params = {"steps": 300, "checkpoint_every": 100, "val_every": 100}
    request = TrainingRequest(workload="command", command=CommandSpec(name="toy", params=params))
    straight = runner.execute(request, lambda _u: None, CancelToken(), run_name="straight")
    kept = newest_command_checkpoint(tmp_path / "runs" / "straight" / "checkpoints")
    assert kept is not None
    assert kept[1] == 200  # the step the program said, not the last one it had printed
    # A second run handed the first one's newest checkpoint, as a retry on another machine would be.
    retry = tmp_path / "runs" / "retry" / "checkpoints"
    retry.mkdir(parents=True)
    (retry / kept[0].name).write_bytes(kept[0].read_bytes())
    resumed = runner.execute(request, lambda _u: None, CancelToken(), run_name="retry", resume=True)
    assert resumed.resumed_from_epoch == 200
    assert "resumed from step 200" in (tmp_path / "runs" / "retry" / "output.log").read_text()
    assert resumed.history[0]["step"] > 200
    assert straight.model is not None
    assert resumed.model is not None
    a = torch.load(tmp_path / "runs" / "straight" / "output" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "runs" / "retry" / "output" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


def sleeper() -> subprocess.Popen[bytes]:
    """A stand-in for a program whose supervisor died: its own session, running on."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)


@pytest.mark.parametrize("same_process", [True, False])
def test_a_new_attempt_stops_the_previous_attempts_program_if_it_still_runs(
    tmp_path: Path, same_process: bool
) -> None:
    commands = tmp_path / "commands"
    write_program(commands, "train.py", COUNTER)
    write_command(commands, "counter", "train.py", args=["--steps", "3", "--out", "{output_dir}"])
    (tmp_path / "data").mkdir()
    orphan = sleeper()
    try:
        record = tmp_path / "runs" / "r" / "program.json"
        record.parent.mkdir(parents=True)
        ticks = start_ticks(orphan.pid)
        assert ticks is not None
        # Not the same process: the pid was recorded with another start time (the number was reused).
        record.write_text(
            json.dumps({"pid": orphan.pid, "start_ticks": ticks if same_process else ticks + 1})
        )
        executor(tmp_path, commands).execute(
            TrainingRequest(workload="command", command=CommandSpec(name="counter")),
            lambda _u: None,
            CancelToken(),
            run_name="r",
            resume=True,
        )
        assert (orphan.poll() is not None) is same_process
        assert json.loads(record.read_text())["pid"] != orphan.pid  # this attempt's program, recorded
    finally:
        orphan.kill()
        orphan.wait()
