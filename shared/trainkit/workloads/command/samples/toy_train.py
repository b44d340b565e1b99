"""A plain torch training script, run by modelyard as the sample command ``toy`` (see toy.yaml).

Nothing in it knows modelyard beyond what it prints: seed-004 lines (``step: 100 loss: 0.54 lr: 0.01``)
every few steps and one structured line per validation (``MODELYARD {"step": 100, "val_loss": ...}``).
It trains a small MLP on data it generates, or on a CSV (numeric columns, the last one the class label),
writes ``model.pt`` (a plain ``torch.save`` state dict) and ``training.json`` into ``--out``, and stops at
the next step on SIGTERM (exit code 143, nothing written).

With ``--checkpoint-every N`` it keeps ``checkpoint.pt`` in ``--out`` (weights, optimizer, schedule, the
batch sampler's random state and the step; replaced atomically every N steps) and says so
(``MODELYARD {"checkpoint": "checkpoint.pt", "step": 400}``: modelyard labels its copy with that step),
and ``--resume FILE`` continues from one: the resumed run ends with the same weights as an uninterrupted
one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn

STOP = {"requested": False}


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: STOP.update(requested=True))
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x, y, classes = load_data(args.data, args.seed)
    n_val = max(1, len(x) // 5)
    x_train, y_train, x_val, y_val = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
    model = nn.Sequential(nn.Linear(x.shape[1], args.hidden), nn.ReLU(), nn.Linear(args.hidden, classes))
    optim_class = torch.optim.Adam if args.optimizer == "adam" else torch.optim.SGD
    optimizer = optim_class(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)
    print(f'MODELYARD {{"device": "cpu", "train_rows": {len(x_train)}, "val_rows": {len(x_val)}}}')
    started = time.perf_counter()
    val: dict[str, float] = {}
    first = 1
    if args.resume is not None:
        state = torch.load(args.resume, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        val, first = state["val"], int(state["step"]) + 1
        print(f"resumed from step {first - 1} ({args.resume})")
    for step in range(first, args.steps + 1):
        if STOP["requested"]:
            print(f"stopped by SIGTERM at step {step - 1}", file=sys.stderr)
            return 143
        index = torch.randint(0, len(x_train), (args.batch_size,), generator=generator)
        loss = loss_fn(model(x_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        if step % 10 == 0 or step == args.steps:
            print(f"step: {step} loss: {loss.item():.6f} lr: {lr:.6g}")
        if step % args.val_every == 0 or step == args.steps:
            val = validate(model, loss_fn, x_val, y_val)
            print("MODELYARD " + json.dumps({"step": step, **val}))
        if args.checkpoint_every and step % args.checkpoint_every == 0 and step < args.steps:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "step": step,
                "val": val,
            }
            save_atomically(state, Path(args.out) / "checkpoint.pt")
            print("MODELYARD " + json.dumps({"checkpoint": "checkpoint.pt", "step": step}))
    write_outputs(Path(args.out), model, args, val, time.perf_counter() - started)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-every", type=int, default=50)
    parser.add_argument("--data", type=Path, default=None, help="A CSV; the last column is the label.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--checkpoint-every", type=int, default=0, help="Steps between checkpoints (0: none)."
    )
    parser.add_argument("--resume", type=Path, default=None, help="A checkpoint.pt to continue from.")
    return parser.parse_args()


def load_data(path: Path | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    if path is None:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(4000, 8, generator=generator)
        y = ((x[:, 0] + 0.5 * x[:, 1] * x[:, 2] > 0).long() + (x[:, 3] > 1.0).long()).clamp(max=2)
        return x, y, 3
    with path.open(newline="") as source:
        rows = [row for row in csv.reader(source) if row]
    header, body = rows[0], rows[1:]
    try:
        values = [[float(v) for v in row] for row in body]
    except ValueError:
        sys.exit(f"{path}: every column must be numeric (header: {', '.join(header)})")
    table = torch.tensor(values, dtype=torch.float32)
    x, labels = table[:, :-1], table[:, -1]
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-8)
    classes = sorted(set(labels.tolist()))
    y = torch.tensor([classes.index(v) for v in labels.tolist()])
    return x, y, len(classes)


@torch.no_grad()
def validate(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    out = model(x)
    accuracy = (out.argmax(1) == y).float().mean().item()
    return {"val_loss": round(loss_fn(out, y).item(), 6), "val_accuracy": round(accuracy, 6)}


def save_atomically(state: dict[str, object], path: Path) -> None:
    """Write to a temporary name, then rename: a reader never sees half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def write_outputs(
    out: Path, model: nn.Module, args: argparse.Namespace, val: dict[str, float], took: float
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "model.pt")
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "final": val, "seconds": round(took, 3)}
    (out / "training.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'model.pt'}")


if __name__ == "__main__":
    sys.exit(main())
