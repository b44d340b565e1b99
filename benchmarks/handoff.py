"""The result hand-off, host half: how well do trained fp32 weights gzip, and at what CPU cost?

Run: ``.venv/bin/python benchmarks/handoff.py [--sizes 1 45 200] [--levels 1 6 9]``.

For each model size (MB) it writes a weights file, then times ``encode_model_inline`` (read, gzip,
base64: exactly the host's callback path) and ``decode_inline_model`` at each gzip level, and prints
the gzip ratio (raw / gzip bytes), the JSON body size and MB/s. "Trained-like" weights are fp32 from a
layer-wise N(0, 1/sqrt(fan_in)) init plus a tenth of that in accumulated updates (what a trained MLP's
weights look like to a compressor: full-entropy mantissas, a narrow exponent range). One extra row
uses a real MLP trained for 200 Adam steps, saved through the checkpoint format, as a cross-check.
The backend half (time to stored model, peak memory during ingest) belongs to the backend benchmark.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from shared.contracts.handoff import decode_inline_model, encode_model_inline

MB = 1 << 20


def trained_like_weights(size_mb: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    remaining = int(size_mb * MB) // 4
    layers = []
    while remaining > 0:
        fan_in = int(rng.choice([256, 512, 1024, 2048]))
        count = min(remaining, fan_in * int(rng.choice([256, 512, 1024])))
        scale = 1.0 / np.sqrt(fan_in)
        layer = rng.normal(0.0, scale, count) + rng.normal(0.0, scale / 10, count)
        layers.append(layer.astype(np.float32))
        remaining -= count
    return np.concatenate(layers).tobytes()


def real_trained_mlp() -> bytes:
    import torch

    from shared.trainkit.checkpoint import checkpoint_bytes

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 384),
        torch.nn.ReLU(),
        torch.nn.Linear(384, 3),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(2048, 64), torch.randint(0, 3, (2048,))
    for _ in range(200):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return checkpoint_bytes(model.state_dict(), model_class="bench.MLP", config={})


def measure(label: str, data: bytes, levels: list[int], folder: Path) -> None:
    path = folder / "model.pt"
    path.write_bytes(data)
    raw = len(data)
    for level in levels:
        started = time.perf_counter()
        model = encode_model_inline(path, level=level)
        encode_s = time.perf_counter() - started
        started = time.perf_counter()
        decoded = decode_inline_model(model, max_size=raw)
        decode_s = time.perf_counter() - started
        assert decoded == data
        gzip_bytes = len(model["data"]) * 3 // 4
        print(
            f"{label:>14} {raw / MB:8.1f} {level:5d} {raw / gzip_bytes:8.3f} {len(model['data']) / MB:9.1f} "
            f"{encode_s:8.2f} {raw / MB / encode_s:8.0f} {decode_s:8.2f}"
        )
        del model, decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 45, 200])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 6, 9])
    args = parser.parse_args()
    print(
        f"{'weights':>14} {'raw MB':>8} {'level':>5} {'ratio':>8} {'body MB':>9} {'enc s':>8} {'enc MB/s':>8} {'dec s':>8}"
    )
    with tempfile.TemporaryDirectory() as folder:
        measure("real MLP", real_trained_mlp(), args.levels, Path(folder))
        for size in args.sizes:
            measure("trained-like", trained_like_weights(size), args.levels, Path(folder))


if __name__ == "__main__":
    main()
