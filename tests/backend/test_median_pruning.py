"""The median pruner's rule in memory decides as Optuna's ``MedianPruner`` does on the same values: ties
at the median, steps some completed trials never reached, the startup trials and the warm-up step."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from backend.domain.pruning import STARTUP_TRIALS, WARMUP_STEPS, MedianPruning

# Few distinct values, so that a trial's best often equals the median exactly (numpy's rounding counts
# there), beside arbitrary ones.
VALUES = st.one_of(
    st.sampled_from([0.1, 0.2, 0.30000000000000004, 0.3, 1.0, 1.5, 2.0]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
STEP_VALUES = st.dictionaries(st.integers(min_value=0, max_value=4), VALUES, max_size=5)


def optunas_decision(completed: list[dict[int, float]], values: dict[int, float], maximize: bool) -> bool:
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_STEPS),
    )
    for steps in completed:
        study.add_trial(optuna.trial.create_trial(value=0.0, intermediate_values=steps))
    running = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values=values)
    return bool(study.pruner.prune(study, running))


@settings(max_examples=400, deadline=None)
@given(completed=st.lists(STEP_VALUES, max_size=6), values=STEP_VALUES, maximize=st.booleans())
def test_the_rule_decides_as_optunas_median_pruner(
    completed: list[dict[int, float]], values: dict[int, float], maximize: bool
) -> None:
    ours = MedianPruning(tuple(completed), maximize=maximize).should_prune(values)
    assert ours == optunas_decision(completed, values, maximize)


@pytest.mark.parametrize(
    ("completed", "values", "prune"),
    [
        (({1: 1.0}, {1: 2.0}), {0: 9.0, 1: 9.0}, True),  # worse than the median at its step
        (({1: 1.0}, {1: 2.0}), {1: 1.5}, False),  # equal to the median: kept
        (({1: 1.0},), {0: 9.0, 1: 9.0}, False),  # one completed trial: still starting up
        (({0: 1.0}, {0: 2.0}), {0: 9.0}, False),  # step 0 is the warm-up
        (({1: 1.0}, {1: 2.0}), {1: 0.5, 2: 9.0}, False),  # no completed trial reached step 2
        (({1: 1.0}, {1: 2.0}), {1: 0.5, 2: 9.0, 3: 9.0}, False),  # its best so far counts, not its last
        # numpy's median of these is 2 ulp below their naive mean (the value): pruned, by a hair.
        (({1: -240769.55335254443}, {1: 0.7}), {1: -120384.42667627221}, True),
    ],
)
def test_examples_of_the_rule(
    completed: tuple[dict[int, float], ...], values: dict[int, float], prune: bool
) -> None:
    assert MedianPruning(completed, maximize=False).should_prune(values) is prune
    assert optunas_decision(list(completed), values, maximize=False) is prune
