"""run.json records what a run was made from: every input file's and defining text's sha256, the
modelyard version, and the git commit when run from a checkout."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from shared.contracts.training import TabularSpec, TabularTask, TrainingOverrides, TrainingRequest, Workload
from shared.trainkit.cancellation import CancelToken
from shared.trainkit.executor import TrainingExecutor
from shared.trainkit.provenance import SOURCE_ROOT, git_commit
from shared.trainkit.storage import ModelStorage
from shared.trainkit.workloads.strategy.sample_data import write_sample_data

STRATEGY = (SOURCE_ROOT / "strategies" / "trend_momentum.yaml").read_text()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_json(tmp_path: Path, data_dir: Path, request: TrainingRequest) -> dict[str, object]:
    executor = TrainingExecutor(data_dir, ModelStorage(tmp_path / "models"), run_root=tmp_path / "runs")
    executor.execute(request, lambda _: None, CancelToken(), run_name="r1")
    record: dict[str, object] = json.loads((tmp_path / "runs" / "r1" / "run.json").read_text())
    return record


def test_a_tabular_run_records_its_parquet_file_hash_and_the_versions(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=80), "y": rng.normal(size=80)}).to_parquet(data_dir / "t.parquet")
    spec = TabularSpec(dataset="t.parquet", target="y", task=TabularTask.REGRESSION)
    request = TrainingRequest(workload=Workload.TABULAR, tabular=spec, overrides=TrainingOverrides(epochs=2))
    record = run_json(tmp_path, data_dir, request)
    content = (data_dir / "t.parquet").read_bytes()
    assert record["inputs"] == [{"path": "t.parquet", "bytes": len(content), "sha256": sha256(content)}]
    assert record["sources"] == {}
    assert record["modelyard_version"] == version("modelyard")


def test_a_strategy_run_records_the_candles_and_the_strategy_text_hashes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_sample_data(data_dir, symbols=("EURUSD",), timeframes=("1h",), rows=600)
    request = TrainingRequest(
        strategy_name="trend_momentum",
        strategy_yaml=STRATEGY,
        symbols=["EURUSD"],
        timeframes=["1h"],
        overrides=TrainingOverrides(epochs=1),
    )
    record = run_json(tmp_path, data_dir, request)
    candles = (data_dir / "EURUSD_1h.csv").read_bytes()
    assert record["inputs"] == [{"path": "EURUSD_1h.csv", "bytes": len(candles), "sha256": sha256(candles)}]
    assert record["sources"] == {"strategy_yaml": sha256(STRATEGY.encode())}


def test_the_git_commit_is_the_checkouts_head(tmp_path: Path) -> None:
    if not (SOURCE_ROOT / ".git").exists():  # an installed copy: no commit to record
        assert git_commit() is None
        return
    head = subprocess.run(
        ["git", "-C", str(SOURCE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    commit = git_commit()
    assert commit is not None
    assert commit.removesuffix("+dirty") == head
