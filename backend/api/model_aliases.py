"""Model aliases: point a stable name at a version, move it, remove it; read and download by alias.

``…/versions/{ref}`` takes a version number or an alias. Aliases start with a letter, so the URL
convertor ``alias`` below matches only them and the by-number routes keep every all-digit path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import StreamingResponse
from starlette.convertors import Convertor, register_url_convertor

from backend.api.dependencies import AliasesDep, CallerDep, ModelsDep
from backend.api.error_handlers import error_responses
from backend.api.responses import responses
from backend.domain.aliases import ALIAS_RULE, AliasChange, ModelAlias
from backend.errors import NotFoundError
from shared.contracts.aliases import AliasChangeView, AliasList, AliasView, SetAliasRequest
from shared.contracts.api import ModelVersionView


class AliasConvertor(Convertor[str]):
    regex = "[A-Za-z][A-Za-z0-9_.-]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("alias", AliasConvertor())

router = APIRouter(prefix="/api/v1/models", tags=["models"])

NamePart = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]
# Any text, so an alias with a '/' or other bad characters gets a 422 that says what an alias may be.
AliasPart = Annotated[str, Path(min_length=1, max_length=300, description=f"The alias: {ALIAS_RULE}.")]
VersionRef = Annotated[
    str, Path(min_length=1, max_length=64, description="A version number, or an alias such as production.")
]


def alias_view(a: ModelAlias) -> AliasView:
    return AliasView(
        strategy=a.strategy, name=a.name, alias=a.alias, version=a.version, set_by=a.set_by, set_at=a.set_at
    )


def change_view(c: AliasChange) -> AliasChangeView:
    return AliasChangeView(
        alias=c.alias,
        action=c.action.value,
        from_version=c.from_version,
        to_version=c.to_version,
        by=c.by,
        at=c.at,
    )


@router.get("/{strategy}/{name}/aliases", response_model=AliasList, responses=error_responses(422))
def list_aliases(strategy: NamePart, name: NamePart, aliases: AliasesDep) -> AliasList:
    """The model's aliases and the history of their changes (who moved which alias from where, when)."""
    return AliasList(
        strategy=strategy,
        name=name,
        aliases=[alias_view(a) for a in aliases.of_model(strategy, name)],
        history=[change_view(c) for c in aliases.history(strategy, name)],
    )


@router.put(
    "/{strategy}/{name}/aliases/{alias:path}",
    response_model=AliasChangeView,
    responses=error_responses(404, 422),
)
def set_alias(
    strategy: NamePart,
    name: NamePart,
    alias: AliasPart,
    body: SetAliasRequest,
    aliases: AliasesDep,
    caller: CallerDep,
) -> AliasChangeView:
    """Point the alias at a version: creates it, or moves it in one step (the move is recorded with
    the token that made it and the version it left). 422 for an invalid alias or an unknown version."""
    return change_view(aliases.set_alias(strategy, name, alias, body.version, by=caller))


@router.delete(
    "/{strategy}/{name}/aliases/{alias:path}", status_code=204, responses=error_responses(404, 422)
)
def delete_alias(
    strategy: NamePart, name: NamePart, alias: AliasPart, aliases: AliasesDep, caller: CallerDep
) -> Response:
    """Remove the alias (the version stays); recorded in the alias history."""
    aliases.remove_alias(strategy, name, alias, by=caller)
    return Response(status_code=204)


@router.get(
    "/{strategy}/{name}/versions/{ref}", response_model=ModelVersionView, responses=error_responses(404, 422)
)
def get_model_version(
    strategy: NamePart, name: NamePart, ref: VersionRef, models: ModelsDep, aliases: AliasesDep
) -> ModelVersionView:
    """One version, by number or by alias (``…/versions/production``), with its metrics and aliases."""
    version = aliases.resolve(strategy, name, ref)
    entry = _version_entry(models.list_versions(strategy, name), version)
    if entry is None:
        raise NotFoundError(
            f"{strategy}/{name} has no version {version}; list them with GET /api/v1/models/{strategy}/{name}",
            strategy=strategy,
            name=name,
            version=version,
        )
    names = sorted(a.alias for a in aliases.of_model(strategy, name) if a.version == version)
    return ModelVersionView.model_validate({**entry, "aliases": names})


@router.get(
    "/{strategy}/{name}/versions/{alias:alias}/download",
    response_class=StreamingResponse,
    responses=responses(
        404, 422, 500, content="application/zip", description="the aliased version's files, zipped"
    ),
)
def download_model_alias(
    strategy: NamePart, name: NamePart, alias: str, models: ModelsDep, aliases: AliasesDep
) -> StreamingResponse:
    """The zip of the version the alias names now (``…/versions/production/download``)."""
    version = aliases.resolve(strategy, name, alias)
    filename, chunks = models.archive(strategy, name, version)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Model-Version": str(version)}
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)


def _version_entry(versions: list[dict[str, Any]], version: int) -> dict[str, Any] | None:
    return next((v for v in versions if int(v.get("version", 0)) == version), None)
