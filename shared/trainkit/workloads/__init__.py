"""The workloads the executor can run: strategy (the flagship), tabular and plugin."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared.contracts.training import TrainingRequest
from shared.contracts.training import Workload as WorkloadKind
from shared.trainkit.executor.workload import Workload


def create_workload(
    request: TrainingRequest, data_dir: Path, plugin_allowlist: Sequence[str] = ()
) -> Workload:
    """The workload object for ``request.workload``; imports only the one it needs."""
    if request.workload is WorkloadKind.STRATEGY:
        from shared.trainkit.workloads.strategy.workload import StrategyWorkload

        return StrategyWorkload(request, data_dir)
    if request.workload is WorkloadKind.TABULAR:
        from shared.trainkit.workloads.tabular import TabularWorkload

        return TabularWorkload(request, data_dir)
    from shared.trainkit.workloads.plugin import PluginWorkload

    return PluginWorkload(request, data_dir, plugin_allowlist)
