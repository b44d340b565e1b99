"""The commands folder seen through trainkit's command templates, as wire views (no server paths)."""

from __future__ import annotations

from pathlib import Path

from shared.contracts.commands import CommandParamView, CommandProgressView, CommandView
from shared.trainkit.workloads.command.catalog import CommandCatalog, CommandEntry
from shared.trainkit.workloads.command.template import CommandTemplate


class CommandFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._catalog = CommandCatalog(root)

    def list_commands(self) -> list[CommandView]:
        """Every template file, valid or not (an invalid one carries its error)."""
        return [_view(entry, self.root) for entry in self._catalog.entries()]

    def get(self, name: str) -> CommandView:
        """One valid template; CommandNotFoundError (404) listing the known ones, ConfigError if broken."""
        template, path = self._catalog.get(name)
        return _view(CommandEntry(path, template), self.root)


def _view(entry: CommandEntry, root: Path) -> CommandView:
    path = entry.path.name if entry.path.parent == root else str(entry.path)
    template = entry.template
    if template is None:
        return CommandView(name=entry.name, valid=False, error=entry.error, path=path)
    return CommandView(
        name=template.name,
        description=template.description,
        path=path,
        params={
            name: CommandParamView(
                type=spec.type.value,
                default=spec.default,
                min=spec.min,
                max=spec.max,
                choices=spec.choices,
                pattern=spec.pattern,
                description=spec.description,
            )
            for name, spec in template.params.items()
        },
        dataset=template.dataset,
        metrics=sorted(template.metrics),
        progress=_progress(template),
        artifacts=list(template.artifacts),
        stop_grace_s=template.stop_grace_s,
        max_runtime_s=template.max_runtime_s,
        checkpoints=template.checkpoints,
    )


def _progress(template: CommandTemplate) -> CommandProgressView | None:
    spec = template.progress
    if spec is None:
        return None
    if isinstance(spec.total, str):
        return CommandProgressView(metric=spec.metric, total_param=spec.total)
    return CommandProgressView(metric=spec.metric, total=spec.total)
