"""Wire schemas of the command templates the backend (or a host) offers (pydantic only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.contracts.training import ParamValue


class CommandParamView(BaseModel):
    type: Literal["int", "float", "str", "bool", "choice"]
    default: ParamValue | None = Field(None, description="Absent: the request must give a value.")
    min: float | None = None
    max: float | None = None
    choices: list[str] | None = None
    pattern: str | None = Field(None, description="str params: a regex the whole value must match.")
    description: str = ""


class CommandProgressView(BaseModel):
    metric: str = Field(..., description="The metric that counts steps.")
    total: int | None = Field(None, description="A constant total of steps.")
    total_param: str | None = Field(None, description="The param whose value is the total of steps.")


class CommandView(BaseModel):
    """A command template as a request sees it (its argv and environment stay on the server)."""

    name: str
    description: str = ""
    valid: bool = True
    error: str | None = Field(None, description="Why an invalid template file cannot be used.")
    path: str = Field("", description="The template's file, relative to the commands folder.")
    params: dict[str, CommandParamView] = Field(default_factory=dict)
    dataset: Literal["none", "optional", "required"] = "none"
    metrics: list[str] = Field(default_factory=list, description="Metric names read from the output.")
    progress: CommandProgressView | None = None
    artifacts: list[str] = Field(default_factory=list, description="Globs under {output_dir} kept.")
    stop_grace_s: float | None = None
    max_runtime_s: float | None = None
    checkpoints: str | None = Field(
        None,
        description="Glob under {output_dir} of the program's checkpoint files; null: a retry starts over.",
    )


class CommandList(BaseModel):
    items: list[CommandView]
