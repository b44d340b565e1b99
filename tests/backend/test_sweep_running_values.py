"""A running trial's values, kept up to date from its growing history a row at a time (issue 14): each row
is read once however often the pruner asks, a rewritten history (a resumed attempt, a thinned long one)
is read again, and the values and the pruner's decision are those of reading the whole history afresh."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.domain.pruning import MedianPruning
from backend.domain.sweeps import RunningValues, intermediate_of
from backend.services.progress import before_epoch

METRIC = "val_loss"


class CountingRow(dict[str, Any]):
    """A history row that counts how often it is read."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        CountingRow.reads += 1
        return super().get(key, default)


def test_a_10k_step_history_grown_a_row_at_a_time_is_read_once_per_row() -> None:
    CountingRow.reads = 0
    values = RunningValues(METRIC)
    history: tuple[dict[str, Any], ...] = ()
    for step in range(1, 10_001):
        history = (
            *history,
            CountingRow(step=step, loss=1.0, **({METRIC: 1.0 / step} if step % 10 == 0 else {})),
        )
        values.read(history)
    # A few reads per row (the metric, then its step): re-reading the history at each row was 5e7.
    assert CountingRow.reads <= 3 * 10_000
    assert values.values == intermediate_of(METRIC, history)
    assert (values.step, values.low, values.high) == (10_000, 1.0 / 10_000, 0.1)


ROW = st.fixed_dictionaries(
    {"loss": st.just(1.0)},
    optional={METRIC: st.sampled_from([0.1, 0.5, 1.0, 2.0, 3.5]), "step": st.integers(0, 30)},
)
CHANGE = st.one_of(
    st.tuples(st.just("grow"), st.lists(ROW, min_size=1, max_size=4)),
    st.tuples(st.just("resume"), st.integers(0, 30)),  # a resumed attempt drops its step and later
    st.tuples(st.just("thin"), st.just(None)),  # a long history keeps every other row and its last
    st.tuples(st.just("same"), st.just(None)),  # a progress tick: nothing new
)
COMPLETED = (
    {1: 1.0, 2: 0.5, 3: 0.4, 5: 0.3, 8: 0.2},
    {1: 2.0, 2: 1.0, 3: 0.8, 5: 0.6, 8: 0.5},
    {1: 0.9, 2: 0.7, 3: 0.6},
)


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(CHANGE, max_size=25), maximize=st.booleans())
def test_kept_values_are_those_of_reading_the_whole_history(changes: list[Any], maximize: bool) -> None:
    values = RunningValues(METRIC)
    rule = MedianPruning(COMPLETED, maximize=maximize)
    history: tuple[dict[str, Any], ...] = ()
    for kind, arg in changes:
        if kind == "grow":
            history = (*history, *(dict(row) for row in arg))
        elif kind == "resume":
            history = before_epoch(history, arg)
        elif kind == "thin" and history:
            history = (*history[:-1:2], history[-1])
        values.read(history)
        fresh = intermediate_of(METRIC, history)
        assert values.values == fresh
        assert values.step == (max(fresh) if fresh else None)
        assert (values.low, values.high) == (
            (min(fresh.values()), max(fresh.values())) if fresh else (None, None)
        )
        best = values.high if maximize else values.low
        decided = values.step is not None and best is not None and rule.should_prune_at(values.step, best)
        assert decided == rule.should_prune(fresh)
