"""The workloads the executor can run: strategy (the flagship), tabular, plugin and command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.contracts.training import TrainingRequest
from shared.contracts.training import Workload as WorkloadKind
from shared.trainkit.executor.workload import Workload


@dataclass(frozen=True)
class WorkloadSettings:
    """What the machine running a workload decides: its data folder, the plugin allowlist, the command
    templates it offers, and where a command's output folder is made before it is stored."""

    data_dir: Path
    plugin_allowlist: Sequence[str] = ()
    commands_dir: Path | None = None
    scratch_dir: Path | None = None


def create_workload(request: TrainingRequest, settings: WorkloadSettings) -> Workload:
    """The workload object for ``request.workload``; imports only the one it needs."""
    if request.workload is WorkloadKind.STRATEGY:
        from shared.trainkit.workloads.strategy.workload import StrategyWorkload

        return StrategyWorkload(request, settings.data_dir)
    if request.workload is WorkloadKind.TABULAR:
        from shared.trainkit.workloads.tabular import TabularWorkload

        return TabularWorkload(request, settings.data_dir)
    if request.workload is WorkloadKind.COMMAND:
        from shared.trainkit.workloads.command.workload import CommandWorkload

        return CommandWorkload(request, settings)
    from shared.trainkit.workloads.plugin import PluginWorkload

    return PluginWorkload(request, settings.data_dir, settings.plugin_allowlist)
