"""When a sweep's parameter importances are computed again (``importances_due``): only when trials
completed since; while it runs the first as soon as two trials completed, then at most once per
interval; a finished sweep's once more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.domain.sweeps import MIN_IMPORTANCE_TRIALS, Importances, importances_due

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVERY_S = 60.0


def due(kept: Importances | None, completed: int, *, finished: bool = False, after_s: float = 0.0) -> bool:
    return importances_due(
        kept, completed, finished=finished, now=T0 + timedelta(seconds=after_s), every_s=EVERY_S
    )


def test_a_running_sweep_is_first_fitted_as_soon_as_enough_trials_completed() -> None:
    assert MIN_IMPORTANCE_TRIALS == 2
    assert not due(None, 0)
    assert not due(None, 1)  # nothing to fit: not even a call
    assert due(None, 2)  # at once, however soon after the sweep started


def test_a_running_sweep_is_fitted_again_at_most_once_per_interval() -> None:
    kept = Importances({"x": 1.0}, 2, T0)
    assert not due(kept, 2, after_s=3600)  # nothing completed since
    assert not due(kept, 3, after_s=EVERY_S - 1)
    assert due(kept, 3, after_s=EVERY_S)


def test_a_fit_optuna_could_not_make_is_tried_again_after_the_interval_too() -> None:
    failed = Importances(None, 2, T0)
    assert not due(failed, 3, after_s=1)
    assert due(failed, 3, after_s=EVERY_S)


def test_a_finished_sweep_is_fitted_once_more_from_all_its_completed_trials() -> None:
    kept = Importances({"x": 1.0}, 3, T0)
    assert due(kept, 5, finished=True, after_s=1)  # at once, whatever the interval
    assert not due(Importances({"x": 1.0}, 5, T0), 5, finished=True, after_s=1)
    assert due(None, 1, finished=True)  # once: Optuna answers None for fewer than two
    assert not due(Importances(None, 1, T0), 1, finished=True, after_s=3600)
