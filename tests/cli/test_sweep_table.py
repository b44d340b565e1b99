"""The sweep table of ``modelyard sweep show``: a trial refused at start (no operation) says why where its
operation would be, and the importances say from how many completed trials."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from backend.cli.sweep_commands import sweep_renderable
from shared.contracts.sweeps import SweepView

REFUSAL = "its training could not start: features: unknown feature 'ema_50_distance'"


def test_a_refused_trial_shows_its_reason_and_importances_their_source() -> None:
    view = SweepView.model_validate(
        {
            "sweep_id": "sw0123456789",
            "status": "completed",
            "objective": {"metric": "val_loss", "direction": "minimize"},
            "n_trials": 2,
            "parallelism": 1,
            "sampler": "grid",
            "pruner": "none",
            "space": {"strategy.indicators.0.params.period": {"type": "categorical", "choices": [50, 5000]}},
            "created_at": datetime(2026, 12, 1, tzinfo=UTC),
            "counts": {"complete": 1, "fail": 1},
            "trials": [
                {"number": 0, "operation_id": "op_a", "status": "completed", "objective": 0.5,
                 "params": {"strategy.indicators.0.params.period": 50}},
                {"number": 1, "operation_id": "", "status": "failed", "error": REFUSAL,
                 "params": {"strategy.indicators.0.params.period": 5000}},
            ],
            "importances": {"strategy.indicators.0.params.period": 1.0},
            "importances_trials": 2,
        }
    )  # fmt: skip
    console = Console(width=400, record=True)
    console.print(sweep_renderable(view))
    text = console.export_text()
    refused = next(line for line in text.splitlines() if "5000" in line)
    assert REFUSAL in refused
    assert "op_a" in text
    assert "importances (from 2 completed trials): strategy.indicators.0.params.period 1.00" in text
