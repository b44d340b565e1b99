"""The commands folder: one template per YAML file, looked up by name; samples written on a first start."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from shared.trainkit.errors import CommandNotFoundError, ConfigError
from shared.trainkit.workloads.command.template import CommandTemplate, load_template_file

SUFFIXES = (".yaml", ".yml")
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


@dataclass(frozen=True)
class CommandEntry:
    """One template file: the template when valid, else the error that makes it unusable."""

    path: Path
    template: CommandTemplate | None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.template.name if self.template is not None else self.path.stem


class CommandCatalog:
    def __init__(self, root: Path | None) -> None:
        self.root = root

    def entries(self) -> list[CommandEntry]:
        if self.root is None or not self.root.is_dir():
            return []
        entries = []
        for path in sorted(p for p in self.root.iterdir() if p.suffix in SUFFIXES and p.is_file()):
            try:
                entries.append(CommandEntry(path, load_template_file(path)))
            except ConfigError as exc:
                entries.append(CommandEntry(path, None, exc.message))
        return entries

    def get(self, name: str) -> tuple[CommandTemplate, Path]:
        """The valid template called ``name`` and its file; a broken one raises its own error."""
        if self.root is None:
            raise ConfigError(
                "no commands folder is configured on this machine (MODELYARD_COMMANDS_DIR)",
                field="command.name",
            )
        for suffix in SUFFIXES:
            path = self.root / f"{name}{suffix}"
            if path.is_file():
                template = load_template_file(path)
                if template.name == name:
                    return template, path
        entries = self.entries()
        for entry in entries:
            if entry.name == name and entry.template is not None:
                return entry.template, entry.path
        known = ", ".join(sorted(e.name for e in entries if e.template is not None)) or "none"
        raise CommandNotFoundError(
            f"no command named {name!r} in the commands folder; known commands: {known}",
            field="command.name",
            name=name,
            known=sorted(e.name for e in entries if e.template is not None),
        )


def write_sample_commands(root: Path) -> list[str]:
    """Copy the shipped sample commands (templates and their scripts) into ``root``; existing files stay."""
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(SAMPLES_DIR.iterdir()):
        if source.suffix not in (*SUFFIXES, ".py") or not source.is_file():
            continue
        target = root / source.name
        if not target.exists():
            shutil.copyfile(source, target)
            written.append(source.name)
    return written


def has_commands(root: Path) -> bool:
    return root.is_dir() and any(p.suffix in SUFFIXES for p in root.iterdir())
