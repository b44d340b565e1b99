"""The median pruner's rule, decided in memory: a sweep asks it at every epoch of every trial, beside the
training, so it must cost microseconds rather than a read of every trial's values from Optuna's storage.

The rule is Optuna's ``MedianPruner(n_startup_trials, n_warmup_steps)`` (interval 1, one trial at the
step at least): no pruning before ``n_startup_trials`` trials completed or before step
``n_warmup_steps``; then a trial whose best value so far is worse than the median of the completed
trials' values at its last step is stopped. A test holds it to Optuna's own decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: The median pruner's settings for every sweep: pruning starts once two trials completed, from step 1.
STARTUP_TRIALS = 2
WARMUP_STEPS = 1


@dataclass(frozen=True)
class MedianPruning:
    """The rule against the completed trials' values (step -> value), as a sweep last read them."""

    completed: tuple[Mapping[int, float], ...]
    maximize: bool
    n_startup_trials: int = STARTUP_TRIALS
    n_warmup_steps: int = WARMUP_STEPS
    #: Step -> the completed trials' median there (None: none reached it), filled as asked.
    _medians: dict[int, float | None] = field(default_factory=dict, init=False, compare=False, repr=False)

    def should_prune(self, values: Mapping[int, float]) -> bool:
        """Whether a running trial that reported ``values`` (finite, step -> value) is to be stopped."""
        if not values:
            return False
        best = max(values.values()) if self.maximize else min(values.values())
        return self.should_prune_at(max(values), best)

    def should_prune_at(self, step: int, best: float) -> bool:
        """Whether a running trial whose last step is ``step`` and best value so far ``best`` is to be
        stopped (the per-step medians are computed once per rule: it is asked at every epoch)."""
        if not self.completed or len(self.completed) < self.n_startup_trials:
            return False
        if step < self.n_warmup_steps:
            return False
        if step not in self._medians:  # a benign race: two threads compute the same value
            at_step = sorted(trial[step] for trial in self.completed if step in trial)
            self._medians[step] = _median(at_step) if at_step else None
        median = self._medians[step]
        if median is None:
            return False
        return best < median if self.maximize else best > median


def _median(ordered: list[float]) -> float:
    """numpy's 50th percentile (linear), to the last bit: a value equal to the median is not pruned,
    so ours must round as Optuna's does."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    low, high = ordered[middle - 1], ordered[middle]
    return high - (high - low) * 0.5
