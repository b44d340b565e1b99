"""Training decisions on synthetic metric histories alone (no torch, no trainer)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from shared.trainkit import decisions as d


def test_decisions_module_does_not_import_torch() -> None:
    # importing through the package would run the facade (which imports torch): load the file alone
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('decisions', sys.argv[1]); "
        "m = importlib.util.module_from_spec(spec); sys.modules['decisions'] = m; spec.loader.exec_module(m); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, d.__file__], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("current", "best", "min_delta", "mode", "expected"),
    [
        (0.9, 1.0, 0.0, "min", True),
        (0.95, 1.0, 0.1, "min", False),
        (1.0, 1.0, 0.0, "min", False),
        (0.8, 0.7, 0.0, "max", True),
        (0.75, 0.7, 0.1, "max", False),
        (1.0, None, 0.0, "min", True),
        (math.nan, 1.0, 0.0, "min", False),
        (None, 1.0, 0.0, "min", False),
    ],
)
def test_is_improvement(
    current: float | None, best: float | None, min_delta: float, mode: d.Mode, expected: bool
) -> None:
    assert d.is_improvement(current, best, min_delta, mode) is expected


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode"):
        d.is_improvement(1.0, 2.0, 0.0, "up")  # type: ignore[arg-type]


def test_should_stop_early_after_patience_stale_epochs() -> None:
    history = [1.0, 0.8, 0.9, 0.85]
    assert not d.should_stop_early(history[:3], patience=2)
    assert d.should_stop_early(history, patience=2)
    assert not d.should_stop_early(history, patience=3)


def test_should_stop_early_respects_min_delta_and_max_mode() -> None:
    assert d.should_stop_early([1.0, 0.99, 0.98], patience=2, min_delta=0.05)
    assert d.should_stop_early([0.5, 0.7, 0.6, 0.65], patience=2, mode="max")
    assert not d.should_stop_early([0.5, 0.6, 0.7], patience=1, mode="max")


def test_zero_patience_disables_early_stopping() -> None:
    assert not d.should_stop_early([1.0, 2.0, 3.0, 4.0], patience=0)


def test_should_checkpoint_only_when_latest_is_best() -> None:
    assert d.should_checkpoint([1.0])
    assert d.should_checkpoint([1.0, 0.5])
    assert not d.should_checkpoint([1.0, 0.5, 0.7])
    assert not d.should_checkpoint([])
    assert d.should_checkpoint([0.1, 0.3], mode="max")


def test_should_evaluate_every_n_epochs_counting_from_one() -> None:
    assert [e for e in range(1, 7) if d.should_evaluate(e, 2)] == [2, 4, 6]
    assert [e for e in range(1, 4) if d.should_evaluate(e, 1)] == [1, 2, 3]
    with pytest.raises(ValueError, match="every_n"):
        d.should_evaluate(1, 0)
    with pytest.raises(ValueError, match="from 1"):
        d.should_evaluate(0, 2)


def test_next_learning_rate_drops_every_patience_stale_epochs() -> None:
    history = [1.0, 0.9, 0.95, 0.96]  # best at index 1, then 2 stale epochs
    assert d.next_learning_rate(history[:3], 0.1, patience=2, factor=0.5) is None
    assert d.next_learning_rate(history, 0.1, patience=2, factor=0.5) == pytest.approx(0.05)
    assert d.next_learning_rate([*history, 0.97], 0.05, patience=2, factor=0.5) is None
    assert d.next_learning_rate([*history, 0.97, 0.98], 0.05, patience=2, factor=0.5) == pytest.approx(0.025)


def test_next_learning_rate_stops_at_min_lr() -> None:
    assert d.next_learning_rate([1.0, 1.0], 0.01, patience=1, factor=0.1, min_lr=0.005) == pytest.approx(
        0.005
    )
    assert d.next_learning_rate([1.0, 1.0], 0.005, patience=1, factor=0.1, min_lr=0.005) is None


def test_next_learning_rate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="factor"):
        d.next_learning_rate([1.0], 0.1, patience=1, factor=1.5)
    with pytest.raises(ValueError, match="patience"):
        d.next_learning_rate([1.0], 0.1, patience=0, factor=0.5)


def test_cosine_learning_rate_after_each_epoch_runs_from_base_to_eta_min() -> None:
    rates = [d.cosine_learning_rate(e, 4, 1.0, 0.0) for e in range(0, 5)]  # 0: before the first epoch
    assert rates == pytest.approx([1.0, 0.853553, 0.5, 0.146447, 0.0], abs=1e-6)
    assert d.cosine_learning_rate(10, 4, 1.0, 0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="epoch"):
        d.cosine_learning_rate(-1, 4, 1.0)


def test_detect_plateau_on_flat_tail_only() -> None:
    assert d.detect_plateau([5.0, 3.0, 1.0, 1.0001, 0.9999, 1.0], window=4, tolerance=1e-3)
    assert not d.detect_plateau([5.0, 4.0, 3.0, 2.0], window=4)
    assert not d.detect_plateau([1.0, 1.0], window=4)


def test_detect_overfitting_when_train_falls_and_val_rises() -> None:
    train = [1.0, 0.8, 0.6, 0.5, 0.4]
    assert d.detect_overfitting(train, [1.0, 0.9, 0.95, 1.0, 1.1], window=4)
    assert not d.detect_overfitting(train, [1.0, 0.9, 0.8, 0.7, 0.6], window=4)
    assert not d.detect_overfitting(train, [None, 0.9, None, 1.0, 1.1], window=4)


def test_analyze_reports_best_val_epoch_and_overfitting() -> None:
    pairs = [(1.0, 1.0), (0.8, 0.7), (0.6, 0.75), (0.4, 0.8), (0.3, 0.9), (0.2, 1.0)]
    history = [{"epoch": e, "train_loss": t, "val_loss": v} for e, (t, v) in enumerate(pairs, start=1)]
    analysis = d.analyze(history)
    assert (analysis.best_epoch, analysis.best_val_loss, analysis.monitor) == (2, 0.7, "val_loss")
    assert analysis.best_train_loss == 0.2
    assert analysis.overfitting
    assert not analysis.plateau
    assert analysis.as_dict()["epochs"] == 6


def test_analyze_without_validation_reports_no_val_loss_but_the_best_train_loss() -> None:
    history = [{"train_loss": v, "val_loss": None} for v in [2.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]]
    analysis = d.analyze(history)
    assert (analysis.monitor, analysis.best_epoch) == ("train_loss", 3)  # rows numbered from 1
    assert analysis.best_val_loss is None
    assert analysis.best_train_loss == 0.5
    assert analysis.as_dict()["best_val_loss"] is None
    assert analysis.plateau
    assert not analysis.overfitting


def test_analyze_of_empty_history() -> None:
    analysis = d.analyze([])
    assert analysis.best_epoch is None
    assert analysis.best_val_loss is None
    assert analysis.best_train_loss is None
    assert analysis.epochs == 0
