"""From a request's param values to the argv a command runs with: typed, bounded, never a shell string.

Each argv element is substituted on its own, so a value can never become a second argument; str values
are further held to a safe alphabet (no leading '-', no path separators, no shell syntax) unless the
template declares its own ``pattern``. The dataset is resolved inside the data folder, symlinks included.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.contracts.training import CommandSpec
from shared.trainkit.errors import ConfigError, DataNotFoundError
from shared.trainkit.workloads.command.template import (
    PLACEHOLDER,
    RESUME_PLACEHOLDER,
    CommandTemplate,
    OptionalArgs,
    ParamSpec,
    ParamType,
)

#: What a str param may hold when its template sets no pattern: one plain token, no path, no shell.
SAFE_STR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+,:=@%-]*")
_NEVER = ("\x00", "\n", "\r")


def check_param(name: str, spec: ParamSpec, value: Any, *, field: str) -> Any:
    """``value`` converted to the param's type, or :class:`ConfigError` naming ``field`` and the rule."""
    kind = spec.type
    if kind is ParamType.BOOL:
        if not isinstance(value, bool):
            raise _bad(field, value, "true or false")
        return value
    if kind in (ParamType.INT, ParamType.FLOAT):
        return _number(spec, value, field)
    if not isinstance(value, str):
        raise _bad(field, value, f"text ({kind.value})")
    if kind is ParamType.CHOICE:
        assert spec.choices is not None
        if value not in spec.choices:
            raise _bad(field, value, f"one of {', '.join(spec.choices)}")
        return value
    if len(value) > spec.max_length or any(c in value for c in _NEVER) or value.startswith("-"):
        raise _bad(field, value, f"one line of at most {spec.max_length} characters, not starting with '-'")
    if spec.pattern is not None:
        if not re.fullmatch(spec.pattern, value):
            raise _bad(field, value, f"text matching {spec.pattern}")
    elif not SAFE_STR.fullmatch(value):
        raise _bad(
            field,
            value,
            "letters, digits and . _ + , : = @ % - starting with a letter or digit "
            "(no spaces, paths or shell syntax)",
        )
    return value


def _number(spec: ParamSpec, value: Any, field: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(field, value, "a number" if spec.type is ParamType.FLOAT else "a whole number")
    if spec.type is ParamType.INT and not isinstance(value, int):
        raise _bad(field, value, "a whole number")
    number: int | float = value if spec.type is ParamType.INT else float(value)
    if not math.isfinite(number):
        raise _bad(field, value, "a finite number")
    low = "-inf" if spec.min is None else _plain(spec.min)
    high = "inf" if spec.max is None else _plain(spec.max)
    if (spec.min is not None and number < spec.min) or (spec.max is not None and number > spec.max):
        kind = "a whole number" if spec.type is ParamType.INT else "a number"
        raise _bad(field, value, f"{kind} from {low} to {high}")
    return number


def _bad(field: str, value: Any, expected: str) -> ConfigError:
    shown = repr(value) if not isinstance(value, str) else repr(value[:80])
    return ConfigError(f"{field} must be {expected}, got {shown}", field=field, expected=expected)


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def resolve_params(template: CommandTemplate, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared param's value: the request's (checked) or the default; unknown or missing ones fail."""
    unknown = sorted(set(given) - set(template.params))
    if unknown:
        declared = ", ".join(sorted(template.params)) or "none"
        raise ConfigError(
            f"command.params.{unknown[0]}: command {template.name!r} has no such param; its params: {declared}",
            field=f"command.params.{unknown[0]}",
        )
    values: dict[str, Any] = {}
    for name, spec in template.params.items():
        field = f"command.params.{name}"
        if name in given:
            values[name] = check_param(name, spec, given[name], field=field)
        elif spec.default is not None:
            values[name] = spec.default
        else:
            raise ConfigError(
                f"{field} is required by command {template.name!r}: {spec.description}", field=field
            )
    return values


def check_dataset(template: CommandTemplate, dataset: str | None) -> Path | None:
    """The request's dataset as a relative path, or None, if the template's dataset rule allows it
    (checked without the data: a host checks a request before its data arrives)."""
    if template.dataset == "none":
        if dataset:
            raise ConfigError(
                f"command.dataset: command {template.name!r} takes no dataset; leave it out",
                field="command.dataset",
            )
        return None
    if not dataset:
        if template.dataset == "required":
            raise ConfigError(
                f"command.dataset is required by command {template.name!r}: name a file or folder of the "
                "data folder (GET /api/v1/data lists them)",
                field="command.dataset",
            )
        return None
    relative = Path(dataset)
    if relative.is_absolute() or ".." in relative.parts or "\\" in dataset or dataset.startswith("-"):
        raise ConfigError(
            f"command.dataset {dataset!r} must be a path relative to the data folder, without '..'",
            field="command.dataset",
        )
    return relative


def resolve_dataset(template: CommandTemplate, dataset: str | None, data_dir: Path) -> Path | None:
    """The absolute path of the request's dataset inside ``data_dir`` (symlinks resolved), or None."""
    relative = check_dataset(template, dataset)
    if relative is None or dataset is None:
        return None
    root = data_dir.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise ConfigError(
            f"command.dataset {dataset!r} leads outside the data folder (through a link?)",
            field="command.dataset",
        )
    if not target.exists():
        raise DataNotFoundError(
            f"command.dataset {dataset!r} is not in the data folder; upload it first", field="command.dataset"
        )
    return target


@dataclass(frozen=True)
class Invocation:
    """Everything a supervised process needs: argv, working folder and environment additions."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


def render(text: str, values: Mapping[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]  # '{{' -> '{', '}}' -> '}'
        return _text(values.get(match.group(1)))

    return PLACEHOLDER.sub(one, text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def build_invocation(
    template: CommandTemplate,
    command_dir: Path,
    params: Mapping[str, Any],
    *,
    output_dir: Path,
    dataset_path: Path | None,
    run_name: str,
    checkpoint: Path | None = None,
) -> Invocation:
    """The argv, folder and environment of one run; with ``checkpoint``, the template's ``resume_argv``
    (``{checkpoint}`` = that file) is appended so the program continues from it."""
    values: dict[str, Any] = {
        **params,
        "python": sys.executable,
        "output_dir": str(output_dir),
        "dataset_path": str(dataset_path) if dataset_path is not None else None,
        "run_name": run_name,
        "command_dir": str(command_dir),
    }
    argv: list[str] = []
    for item in template.argv:
        if isinstance(item, OptionalArgs):
            if values.get(item.when) not in (None, False, ""):
                argv.extend(render(arg, values) for arg in item.args)
        else:
            argv.append(render(item, values))
    if checkpoint is not None:
        resume_values = {**values, RESUME_PLACEHOLDER: str(checkpoint)}
        argv.extend(render(arg, resume_values) for arg in template.resume_argv)
    env = {key: render(value, values) for key, value in template.env.items()}
    return Invocation(argv=argv, cwd=workdir_of(template, command_dir), env=env)


def workdir_of(template: CommandTemplate, command_dir: Path) -> Path:
    if template.workdir is None:
        return command_dir
    path = Path(os.path.expanduser(template.workdir))
    return path if path.is_absolute() else command_dir / path


def check_program(invocation: Invocation, template: CommandTemplate, source: str) -> None:
    """Fail at submit time, not as a failed run later, when the program (or its script) is missing."""
    if not invocation.cwd.is_dir():
        raise ConfigError(
            f"command {template.name!r}: working folder {invocation.cwd} does not exist; fix 'workdir' in {source}",
            field="command.name",
        )
    program = invocation.argv[0]
    if not program:
        raise ConfigError(f"command {template.name!r}: argv[0] is empty; fix {source}", field="command.name")
    path = os.environ.get("PATH", os.defpath)
    path = invocation.env.get("PATH", path)
    found = _executable(invocation.cwd / program) if "/" in program else shutil.which(program, path=path)
    if not found:
        raise ConfigError(
            f"command {template.name!r}: program {program!r} is not installed on this machine (not found "
            f"{'at that path' if '/' in program else 'on PATH'}); install it or fix argv[0] in {source}",
            field="command.name",
            program=program,
        )
    if program == sys.executable and len(invocation.argv) > 1 and invocation.argv[1].endswith(".py"):
        script = invocation.cwd / invocation.argv[1]
        if not script.is_file():
            raise ConfigError(
                f"command {template.name!r}: script {invocation.argv[1]!r} does not exist in {invocation.cwd}; "
                f"fix argv or workdir in {source}",
                field="command.name",
            )


def _executable(path: Path) -> str | None:
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def resolved_request(
    template: CommandTemplate, spec: CommandSpec, data_dir: Path
) -> tuple[dict[str, Any], Path | None]:
    """The request's params and dataset, both checked against the template."""
    return resolve_params(template, spec.params), resolve_dataset(template, spec.dataset, data_dir)
