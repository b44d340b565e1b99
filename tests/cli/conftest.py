"""Fixtures of the CLI tests: a runner that injects a CliEnv, and a workspace of tiny local folders."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from backend.cli import cli
from backend.cli.options import CliEnv

REPO = Path(__file__).resolve().parents[2]
SAMPLE_STRATEGIES = REPO / "strategies"

Invoke = Callable[..., Result]


@pytest.fixture
def invoke() -> Invoke:
    """``invoke(args, env=CliEnv(...), input=...)``: run the CLI in-process; wide, uncoloured output."""
    runner = CliRunner()

    def run(args: Sequence[str], env: CliEnv | None = None, input: str | None = None) -> Result:
        return runner.invoke(
            cli,
            list(args),
            obj=env or CliEnv(poll_interval_s=0.0),
            input=input,
            env={"COLUMNS": "200", "NO_COLOR": "1", "MODELYARD_SERVER": None, "MODELYARD_TOKEN": None},
            catch_exceptions=False,
        )

    return run


@dataclass
class Workspace:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def strategies(self) -> Path:
        return self.root / "strategies"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def train_folders(self) -> list[str]:
        """The folder options of ``modelyard train``."""
        return [
            "--data-dir", str(self.data),
            "--models-dir", str(self.models),
            "--strategies-dir", str(self.strategies),
            "--runs-dir", str(self.runs),
        ]  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """Empty data/models folders and a copy of the shipped sample strategies."""
    ws = Workspace(tmp_path)
    shutil.copytree(SAMPLE_STRATEGIES, ws.strategies)
    return ws


@pytest.fixture(scope="session")
def tiny_candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EURUSD 1h sample candles, small enough to train on in a second or two (written once)."""
    from shared.trainkit.workloads.strategy.sample_data import write_sample_data

    folder = tmp_path_factory.mktemp("candles")
    write_sample_data(folder, symbols=("EURUSD",), timeframes=("1h",), rows=1500, seed=3)
    return folder


@pytest.fixture
def workspace_with_data(workspace: Workspace, tiny_candles: Path) -> Workspace:
    shutil.copytree(tiny_candles, workspace.data)
    return workspace
