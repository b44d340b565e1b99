"""Data: list candle datasets, upload one (validated), download one (or any data file) with its sha256,
write missing samples."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse

from backend.api.dependencies import ComponentsDep, DatasetsDep
from backend.api.error_handlers import error_responses
from backend.api.host_access import check_signed_request
from backend.api.responses import responses
from backend.errors import PayloadTooLargeError
from backend.services.training import check_name, check_timeframe
from shared.contracts.api import DatasetList, DatasetView

router = APIRouter(prefix="/api/v1/data", tags=["data"])

SHA256_HEADER = "X-Content-SHA256"


@router.get("", response_model=DatasetList)
def list_data(datasets: DatasetsDep) -> DatasetList:
    """Symbols, timeframes, date ranges and row counts of every candle CSV."""
    return DatasetList(items=[DatasetView.model_validate(d) for d in datasets.list_datasets()])


_UPLOAD_EXAMPLE = {"symbol": "EURUSD", "timeframe": "1h", "file": "EURUSD_1h.csv"}


@router.post(
    "",
    status_code=201,
    response_model=DatasetView,
    responses=error_responses(400, 413, 422),
    openapi_extra={"requestBody": {"content": {"multipart/form-data": {"example": _UPLOAD_EXAMPLE}}}},
)
def upload_data(
    components: ComponentsDep,
    file: Annotated[UploadFile, File(description="Candle CSV: timestamp, open, high, low, close, volume.")],
    symbol: Annotated[str, Form(min_length=1, max_length=32)],
    timeframe: Annotated[str, Form(min_length=1, max_length=32)],
) -> DatasetView:
    """Validate and store a candle CSV as ``{SYMBOL}_{TIMEFRAME}.csv`` (replacing an older one)."""
    check_name(symbol, "symbol")
    check_timeframe(timeframe)
    limit = components.settings.max_upload_bytes
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLargeError(
            f"the uploaded file exceeds {limit} bytes (MODELYARD_MAX_UPLOAD_BYTES)", limit=limit
        )
    stored = components.datasets.store(symbol, timeframe, content)
    return DatasetView.model_validate({"symbol": symbol, "timeframe": timeframe, **stored})


@router.get(
    "/files/{name:path}/download",
    response_class=FileResponse,
    responses=responses(404, 409, content="text/csv", description="the file as stored"),
)
def download_data_file(name: str, request: Request, components: ComponentsDep) -> FileResponse:
    """Any file of the data folder by its relative name (a tabular dataset, e.g. ``iris.csv``), with
    its sha256 in ``X-Content-SHA256``. Signed requests (hosts) only; loopback callers only when no
    shared secret is set."""
    check_signed_request(request, b"", components)
    path = components.datasets.file_path(name)
    return FileResponse(path, filename=path.name, headers={SHA256_HEADER: _sha256(path)})


@router.get(
    "/{symbol}/{timeframe}/download",
    response_class=FileResponse,
    responses=responses(404, 409, content="text/csv", description="the file as stored"),
)
def download_data(symbol: str, timeframe: str, request: Request, components: ComponentsDep) -> FileResponse:
    """The CSV as stored, with its sha256 in the ``X-Content-SHA256`` header (hosts fetch data this way).

    Signed requests (hosts) only; loopback callers only when no shared secret is set."""
    check_signed_request(request, b"", components)
    path = components.datasets.path_of(check_name(symbol, "symbol"), check_timeframe(timeframe))
    return FileResponse(
        path, media_type="text/csv", filename=path.name, headers={SHA256_HEADER: _sha256(path)}
    )


@router.post("/sample", response_model=DatasetList)
def regenerate_sample_data(datasets: DatasetsDep) -> DatasetList:
    """Write the seeded sample candles that are missing (an uploaded file is never overwritten) and
    list the datasets."""
    datasets.write_samples()
    return DatasetList(items=[DatasetView.model_validate(d) for d in datasets.list_datasets()])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
