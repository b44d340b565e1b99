"""Serves the dashboard page at ``/`` and its assets from package data under ``/dashboard/``.

Assets ship inside the package (``backend/dashboard/static``), so the page works offline and from an
installed wheel. The router also carries the two small read-only API routes the page needs
(``backend.api.training_requests``), so the app includes the dashboard with one line.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from backend.api import training_requests

STATIC_PREFIX = "/dashboard/"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}

router = APIRouter()
router.include_router(training_requests.router)


def static_root() -> Traversable:
    return resources.files("backend.dashboard").joinpath("static")


def read_asset(relative: str) -> tuple[bytes, str]:
    """The bytes and media type of one asset; 404 for anything outside the static folder or unknown."""
    parts = [p for p in relative.split("/") if p]
    suffix = "." + parts[-1].rsplit(".", 1)[-1] if parts and "." in parts[-1] else ""
    if not parts or any(p in (".", "..") or p.startswith(".") for p in parts) or suffix not in MEDIA_TYPES:
        raise HTTPException(status_code=404, detail=f"no dashboard asset {relative!r}")
    node = static_root()
    for part in parts:
        node = node.joinpath(part)
    if not node.is_file():
        raise HTTPException(status_code=404, detail=f"no dashboard asset {relative!r}")
    return node.read_bytes(), MEDIA_TYPES[suffix]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page() -> HTMLResponse:
    body, _ = read_asset("index.html")
    return HTMLResponse(body, headers={"Cache-Control": "no-cache"})


@router.get(STATIC_PREFIX + "{path:path}", include_in_schema=False)
def dashboard_asset(path: str) -> Response:
    body, media_type = read_asset(path)
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})
