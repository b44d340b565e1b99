"""Commands: the operator-registered training programs a ``command`` training may run."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.dependencies import CommandsDep
from backend.api.error_handlers import error_responses
from shared.contracts.commands import CommandList, CommandView

router = APIRouter(prefix="/api/v1/commands", tags=["commands"])


@router.get("", response_model=CommandList)
def list_commands(commands: CommandsDep) -> CommandList:
    """Every template file of the commands folder (MODELYARD_COMMANDS_DIR), valid or not: an invalid one
    carries its error, naming the line. Their argv and environment are not shown."""
    return CommandList(items=commands.list_commands())


@router.get("/{name}", response_model=CommandView, responses=error_responses(404, 422))
def get_command(name: str, commands: CommandsDep) -> CommandView:
    """One command: its params (types, defaults, ranges), dataset rule, metrics, progress and artefacts.
    404 lists the known commands; 422 says why the file of that name is invalid."""
    return commands.get(name)
