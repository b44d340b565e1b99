"""Models: list, versions with metrics, download one version as a zip or as ONNX, delete a version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import StreamingResponse

from backend.api.dependencies import AliasesDep, CallerDep, ModelsDep
from backend.api.error_handlers import error_responses
from backend.api.responses import responses
from shared.contracts.api import ModelDetail, ModelMetrics, ModelSummary, ModelVersionView
from shared.contracts.results import lenient

router = APIRouter(prefix="/api/v1/models", tags=["models"])

# '+' joins symbols and timeframes in the name of a multi-series model: AAPL+BTCUSD_1d+1h.
NamePart = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]
Version = Annotated[int, Path(ge=1, le=10**9)]


@router.get("", response_model=list[ModelSummary])
def list_models(models: ModelsDep, aliases: AliasesDep) -> list[ModelSummary]:
    named = aliases.by_model()
    return [
        ModelSummary.model_validate({**m, "aliases": named.get((m["strategy"], m["name"]), {})})
        for m in models.list_models()
    ]


@router.get("/{strategy}/{name}", response_model=ModelDetail, responses=error_responses(404, 422))
def get_model(strategy: NamePart, name: NamePart, models: ModelsDep, aliases: AliasesDep) -> ModelDetail:
    """Every version of one model, newest first, with its metrics and the aliases naming it."""
    named: dict[int, list[str]] = {}
    for a in aliases.of_model(strategy, name):
        named.setdefault(a.version, []).append(a.alias)
    versions = [
        _version_view({**v, "aliases": named.get(int(v["version"]), [])})
        for v in models.list_versions(strategy, name)
    ]
    return ModelDetail(strategy=strategy, name=name, versions=versions)


def _version_view(version: dict[str, Any]) -> ModelVersionView:
    # metrics.json is whatever the training (or an older modelyard) wrote: an odd key is left out.
    metrics = lenient(ModelMetrics, version.get("metrics") or {})
    return ModelVersionView.model_validate({**version, "metrics": metrics})


@router.get(
    "/{strategy}/{name}/versions/{version}/download",
    response_class=StreamingResponse,
    responses=responses(404, 500, content="application/zip", description="the version's files, zipped"),
)
def download_model_version(
    strategy: NamePart, name: NamePart, version: Version, models: ModelsDep
) -> StreamingResponse:
    """One zip archive with every file of the version, streamed once every file matches the sha256
    recorded at save time (500 ``model_corrupted`` naming the file if one does not)."""
    filename, chunks = models.archive(strategy, name, version)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)


@router.get(
    "/{strategy}/{name}/versions/{version}/onnx",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The version's network as an ONNX graph (input `features`, float32 "
            "[batch, input_dim], normalised as features.json says; output `logits` or `prediction`).",
        },
        **error_responses(404, 422, 500, 503),
    },
)
def export_model_version_onnx(
    strategy: NamePart, name: NamePart, version: Version, models: ModelsDep
) -> Response:
    """One version of a strategy or tabular model as an ONNX file, for onnxruntime or any ONNX tool.

    The stored files are checked first, as a load checks them. 422 ``model_not_exportable`` says why a
    version cannot be exported (a command training's files; a plugin model, whose code and input live in
    its own package); 503 ``export_unavailable`` when the server lacks the optional ``onnx`` extra."""
    filename, data = models.onnx(strategy, name, version)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content=data, media_type="application/octet-stream", headers=headers)


@router.delete("/{strategy}/{name}/versions/{version}", status_code=204, responses=error_responses(404, 422))
def delete_model_version(
    strategy: NamePart,
    name: NamePart,
    version: Version,
    models: ModelsDep,
    aliases: AliasesDep,
    caller: CallerDep,
) -> Response:
    """Delete the version; its aliases are removed with it (recorded in the alias history)."""
    models.delete(strategy, name, version)
    aliases.forget_version(strategy, name, version, by=caller)
    return Response(status_code=204)
