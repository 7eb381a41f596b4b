"""The web pages (``/scan``, ``/dashboard``, ``/work``) and their static files (``/static/...``).

The pages are plain HTML, CSS and JavaScript modules under ``api/web/`` (no build step);
they talk to the JSON API of the same origin. Static files are served by one route
rather than a mounted ``StaticFiles`` app, so mounting the pages is one
``include_router`` and a file outside ``api/web/`` or of an unlisted type is never served.
Neither pages nor files appear in the OpenAPI document: they are not API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import ProblemError

__all__ = ["PAGES", "STATIC_PREFIX", "WEB_ROOT", "router", "static_file"]

router = APIRouter(tags=["pages"], include_in_schema=False)

WEB_ROOT: Final = Path(__file__).resolve().parent.parent / "web"
STATIC_PREFIX: Final = "/static/"
PAGES: Final = {"/scan": "scan.html", "/dashboard": "dashboard.html", "/work": "work.html"}

# Only these types are served; JavaScript modules must come as text/javascript.
_MEDIA: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
# Same-origin everything: the pages load no third-party code, so a CSP can say so.
# Camera frames and uploaded images become blob: and data: URLs.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self)",
    "Cache-Control": "no-cache",
}
# Revalidate rather than cache for a day: files change with each deployment and carry
# no version in their names.
_STATIC_HEADERS: Final = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def static_file(relative: str) -> Path:
    """The file under ``api/web/`` that ``relative`` names; raises ``ProblemError`` otherwise."""
    candidate = (WEB_ROOT / relative).resolve()
    # resolve() removes ``..`` and follows links, so containment is checked on the real path.
    if (
        not candidate.is_relative_to(WEB_ROOT)
        or candidate.suffix not in _MEDIA
        or not candidate.is_file()
    ):
        raise ProblemError("not-found", f"no static file {relative!r}")
    return candidate


def _page(name: str) -> FileResponse:
    return FileResponse(WEB_ROOT / name, media_type=_MEDIA[".html"], headers=_PAGE_HEADERS)


@router.get("/scan", response_class=FileResponse)
def scan_page() -> FileResponse:
    """The scanner: camera, image upload or a typed code, then the passport."""
    return _page(PAGES["/scan"])


@router.get("/dashboard", response_class=FileResponse)
def dashboard_page() -> FileResponse:
    """The auditor's dashboard: flows, rates, anomalies, EPR reports, lineage."""
    return _page(PAGES["/dashboard"])


@router.get("/work", response_class=FileResponse)
def work_page() -> FileResponse:
    """The recycler's work page: scan, accept handovers, record inspections and recycling."""
    return _page(PAGES["/work"])


@router.get(STATIC_PREFIX + "{relative:path}", response_class=FileResponse)
def static(relative: str) -> FileResponse:
    """A file of the web pages (scripts, styles, vendored libraries and their licences)."""
    path = static_file(relative)
    return FileResponse(path, media_type=_MEDIA[path.suffix], headers=_STATIC_HEADERS)
