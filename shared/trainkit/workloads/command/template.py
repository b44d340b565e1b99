"""A command template: an operator-registered training program, one YAML file per command.

The template says how to build the program's argv from typed params (never a shell string), which
metrics to read from its output, what counts as progress and which files of its output folder make the
model version. Requests only pick a template by name and give param values; see
:mod:`~shared.trainkit.workloads.command.arguments` for how those are checked and substituted.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts.training import COMMAND_NAME_PATTERN, ParamValue
from shared.trainkit.workloads.strategy.config_errors import (
    FieldPathError,
    parse_yaml_model,
    read_config_file,
)

#: ``{name}`` in an argv or env string; ``{{`` and ``}}`` are literal braces.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
#: Placeholders every command may use besides its params.
BUILTIN_PLACEHOLDERS = ("python", "output_dir", "dataset_path", "run_name", "command_dir")
#: The placeholder of ``resume_argv``: the checkpoint file a retry resumes from.
RESUME_PLACEHOLDER = "checkpoint"
#: Seed 004's metric patterns, used when a template declares none.
DEFAULT_METRICS: dict[str, str] = {
    # not the "loss" of "val loss" (val_loss has its own pattern; "_" is already a word character). The
    # look-behinds come after the literal so every pattern starts with one: the scan then only stops
    # where one of the four names could begin, a third faster than look-behinds tried at every position.
    "loss": r"loss(?<!\wloss)(?<!val\sloss)[:\s=]+([-+0-9.eE]+|nan|inf)",
    "step": r"step[:\s=]+(\d+)",
    "lr": r"lr(?<!\wlr)[:\s=]+([-+0-9.eE]+)",
    "val_loss": r"val[_\s]loss[:\s=]+([-+0-9.eE]+|nan|inf)",
}
_PARAM_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")  # params become placeholders: no "-"


class ParamType(StrEnum):
    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    CHOICE = "choice"


class ParamSpec(BaseModel):
    """One param a request may set. No ``default`` means the request must give it."""

    model_config = ConfigDict(extra="forbid")

    type: ParamType
    default: ParamValue | None = None
    min: float | None = None
    max: float | None = None
    choices: list[str] | None = None
    pattern: str | None = Field(
        None, description="str params: a regex the whole value must match (replaces the safe default)."
    )
    max_length: int = Field(200, ge=1, le=4096)
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type is ParamType.CHOICE and not self.choices:
            raise ValueError("a choice param needs a non-empty 'choices' list")
        if self.type is not ParamType.CHOICE and self.choices is not None:
            raise ValueError(f"'choices' belongs to type choice, not {self.type.value}")
        numeric = self.type in (ParamType.INT, ParamType.FLOAT)
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"'min'/'max' belong to int and float params, not {self.type.value}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from exc
        return self


class ProgressSpec(BaseModel):
    """``metric`` counts steps; the total is a constant or the value of a param."""

    model_config = ConfigDict(extra="forbid")

    metric: str = "step"
    total: int | str = Field(..., description="A whole number, or the name of an int param.")


class OptionalArgs(BaseModel):
    """An argv group kept only when ``when`` (a bool param, or a placeholder) is set: true or non-empty."""

    model_config = ConfigDict(extra="forbid")

    when: str
    args: list[str] = Field(..., min_length=1)


ArgvItem = str | OptionalArgs


class CommandTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=COMMAND_NAME_PATTERN)
    description: str = ""
    argv: list[ArgvItem] = Field(..., min_length=1)
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    dataset: Literal["none", "optional", "required"] = "none"
    metrics: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_METRICS))
    progress: ProgressSpec | None = None
    artifacts: list[str] = Field(default_factory=lambda: ["**/*"], min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = Field(None, description="Relative to the template's folder unless absolute.")
    stop_grace_s: float = Field(10.0, gt=0, le=600)
    max_runtime_s: float | None = Field(None, gt=0)
    checkpoints: str | None = Field(
        None,
        description=(
            "A glob under {output_dir}: the program's checkpoint files (the newest is kept, labelled with "
            'the step of its MODELYARD {"checkpoint": ..., "step": N} line, else inferred).'
        ),
    )
    resume_argv: list[str] = Field(
        default_factory=list,
        description="Arguments added when a retry resumes; {checkpoint} is the newest checkpoint file.",
    )

    @field_validator("params")
    @classmethod
    def _param_names(cls, params: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for name in params:
            if not _PARAM_NAME.fullmatch(name) or name in (*BUILTIN_PLACEHOLDERS, RESUME_PLACEHOLDER):
                raise ValueError(
                    f"param name {name!r} must be lower-case letters, digits and '_' and not one of "
                    f"{', '.join((*BUILTIN_PLACEHOLDERS, RESUME_PLACEHOLDER))}"
                )
        return params

    @field_validator("metrics")
    @classmethod
    def _metric_patterns(cls, metrics: dict[str, str]) -> dict[str, str]:
        for name, pattern in metrics.items():
            try:
                groups = re.compile(pattern).groups
            except re.error as exc:
                raise ValueError(f"metric {name!r}: not a valid regex: {exc}") from exc
            if groups != 1:
                raise ValueError(f"metric {name!r}: the regex needs exactly one capture group, has {groups}")
            try:  # the metrics are scanned as one alternation: a global flag must be scoped
                re.compile(f"(?:{pattern})|x")
            except re.error as exc:
                raise ValueError(
                    f"metric {name!r}: {exc}; write a flag for part of the regex, e.g. (?i:loss) instead of (?i)loss"
                ) from exc
        return metrics

    @field_validator("artifacts")
    @classmethod
    def _artifact_globs(cls, globs: list[str]) -> list[str]:
        for glob in globs:
            _inside_output_dir(glob, "artifact glob")
        return globs

    @field_validator("checkpoints")
    @classmethod
    def _checkpoint_glob(cls, glob: str | None) -> str | None:
        if glob is not None:
            _inside_output_dir(glob, "checkpoints glob")
        return glob

    @model_validator(mode="after")
    def _references(self) -> CommandTemplate:
        known = set(BUILTIN_PLACEHOLDERS) | set(self.params)
        for index, item in enumerate(self.argv):
            for text in [item] if isinstance(item, str) else item.args:
                for name in placeholders(text):
                    if name not in known:
                        raise FieldPathError(
                            ("argv", index), f"unknown placeholder {{{name}}}; known: {_list(known)}"
                        )
            if isinstance(item, OptionalArgs) and item.when not in known:
                raise FieldPathError(
                    ("argv", index, "when"), f"{item.when!r} is neither a param nor a placeholder"
                )
        for key, value in self.env.items():
            for name in placeholders(value):
                if name not in known:
                    raise FieldPathError(
                        ("env", key), f"unknown placeholder {{{name}}}; known: {_list(known)}"
                    )
        for name, spec in self.params.items():
            if spec.default is not None:
                from shared.trainkit.workloads.command.arguments import check_param

                check_param(name, spec, spec.default, field=f"params.{name}.default")
        for index, text in enumerate(self.resume_argv):
            for name in placeholders(text):
                if name not in known | {RESUME_PLACEHOLDER}:
                    raise FieldPathError(
                        ("resume_argv", index),
                        f"unknown placeholder {{{name}}}; known: {_list(known | {RESUME_PLACEHOLDER})}",
                    )
        if self.resume_argv and not any(
            RESUME_PLACEHOLDER in placeholders(text) for text in self.resume_argv
        ):
            raise ValueError("resume_argv: name the checkpoint file with {checkpoint}")
        if self.resume_argv and self.checkpoints is None:
            raise ValueError("resume_argv needs 'checkpoints': a glob of the files it resumes from")
        if self.checkpoints is not None and not self.resume_argv:
            raise ValueError(
                "checkpoints needs 'resume_argv': the arguments that make the program resume, e.g. "
                "[--resume, '{checkpoint}']"
            )
        if self.progress is not None and isinstance(self.progress.total, str):
            total = self.params.get(self.progress.total)
            if total is None or total.type is not ParamType.INT:
                raise ValueError(f"progress.total: {self.progress.total!r} is not an int param")
        if self.progress is not None and self.progress.metric not in self.metrics:
            raise ValueError(f"progress.metric: {self.progress.metric!r} is not one of the metrics")
        return self

    def defaults(self) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.params.items() if spec.default is not None}


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text`` (escaped braces skipped)."""
    return [m.group(1) for m in PLACEHOLDER.finditer(text) if m.group(1) is not None]


def parse_template(text: str, source: str) -> CommandTemplate:
    """Parse and validate a template; any problem raises :class:`ConfigError` naming the line and field."""
    return parse_yaml_model(
        CommandTemplate, text, source=source, what="command", shape="at least name and argv"
    )


def load_template_file(path: Path) -> CommandTemplate:
    return parse_template(read_config_file(path, "command"), source=str(path))


def _inside_output_dir(glob: str, what: str) -> None:
    if glob.startswith("/") or ".." in Path(glob).parts:
        raise ValueError(f"{what} {glob!r} must stay inside {{output_dir}} (no '/' or '..')")


def _list(names: set[str]) -> str:
    return ", ".join(sorted(names))
