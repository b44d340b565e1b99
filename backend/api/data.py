"""Data: list the data folder (candles and tables), upload a candle CSV or a table (CSV or Parquet,
validated), preview a file's columns, download one with its sha256, write missing samples."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse

from backend.api.dependencies import ComponentsDep, DatasetsDep
from backend.api.error_handlers import error_responses
from backend.api.host_access import check_signed_request
from backend.api.responses import responses
from backend.errors import InvalidRequestError, PayloadTooLargeError
from backend.services.training import check_name, check_timeframe
from shared.contracts.api import DataPreview, DatasetKind, DatasetList, DatasetView

router = APIRouter(prefix="/api/v1/data", tags=["data"])

SHA256_HEADER = "X-Content-SHA256"


@router.get("", response_model=DatasetList)
def list_data(datasets: DatasetsDep) -> DatasetList:
    """Every file of the data folder with its ``kind``: candle CSVs (symbol, timeframe, date range, rows)
    and tables (any other CSV or Parquet: format, rows, columns)."""
    return DatasetList(items=[DatasetView.model_validate(d) for d in datasets.list_datasets()])


_UPLOAD_EXAMPLE = {"symbol": "EURUSD", "timeframe": "1h", "file": "EURUSD_1h.csv"}
_TABLE_EXAMPLE = {"kind": "table", "file": "churn.parquet"}


@router.post(
    "",
    status_code=201,
    response_model=DatasetView,
    responses=error_responses(400, 413, 422),
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "examples": {
                        "candles": {"value": _UPLOAD_EXAMPLE},
                        "table": {"value": _TABLE_EXAMPLE},
                    }
                }
            }
        }
    },
)
def upload_data(
    components: ComponentsDep,
    file: Annotated[
        UploadFile,
        File(
            description="Candles: a CSV of timestamp, open, high, low, close, volume. Table: any CSV with "
            "a header line, or a Parquet file."
        ),
    ],
    symbol: Annotated[str | None, Form(min_length=1, max_length=32, description="Candles only.")] = None,
    timeframe: Annotated[str | None, Form(min_length=1, max_length=32, description="Candles only.")] = None,
    kind: Annotated[
        DatasetKind | None,
        Form(description="candles or table; by default candles when symbol or timeframe is given."),
    ] = None,
    name: Annotated[
        str | None,
        Form(
            min_length=1,
            max_length=128,
            description="Table only: the file name to store it as (.csv or .parquet); by default the "
            "uploaded file's name.",
        ),
    ] = None,
) -> DatasetView:
    """Validate and store a candle CSV as ``{SYMBOL}_{TIMEFRAME}.csv``, or a table (CSV or Parquet) under
    its name; either replaces an older file of that name. A table is streamed to disk, never held
    whole in memory."""
    limit = components.settings.max_upload_bytes
    if (kind or ("candles" if symbol or timeframe else "table")) == "table":
        stored = components.datasets.store_table(_table_name(name, file), file.file, max_bytes=limit)
        return DatasetView.model_validate(stored)
    symbol, timeframe = _for_candles(symbol, "symbol"), _for_candles(timeframe, "timeframe")
    check_name(symbol, "symbol")
    check_timeframe(timeframe)
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLargeError(
            f"the uploaded file exceeds {limit} bytes (MODELYARD_MAX_UPLOAD_BYTES)", limit=limit
        )
    stored = components.datasets.store(symbol, timeframe, content)
    return DatasetView.model_validate({"symbol": symbol, "timeframe": timeframe, **stored})


def _for_candles(value: str | None, field: str) -> str:
    if not value:
        raise InvalidRequestError(
            f"{field} is required for a candle upload (or send kind=table to upload a table)", field=field
        )
    return value


def _table_name(name: str | None, file: UploadFile) -> str:
    """``name``, else the upload's own file name with anything but letters, digits, '.', '_', '-'
    turned into '_'."""
    if name:
        return name
    uploaded = PurePosixPath((file.filename or "").replace("\\", "/")).name
    if not uploaded:
        raise InvalidRequestError(
            "the uploaded file has no name: send the form field 'name' (e.g. churn.csv)", field="name"
        )
    return re.sub(r"[^A-Za-z0-9._-]", "_", uploaded).lstrip("._-") or "table.csv"


@router.get(
    "/{name:path}/preview",
    response_model=DataPreview,
    responses=error_responses(404, 422),
)
def preview_data(name: str, datasets: DatasetsDep) -> DataPreview:
    """A data file's columns with their dtype and missing values, its row count and first rows (read in
    chunks: any size of file). ``name`` as listed in ``path`` (e.g. ``churn.csv``, ``EURUSD_1h.csv``)."""
    return DataPreview.model_validate(datasets.preview(name))


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
