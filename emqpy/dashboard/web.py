"""The web dashboard on the API's port: ``/`` is its page, ``/static/...`` its files.

No build step and nothing fetched from the internet: the page is ES modules (``web/js``) that
import Vue 3 and Vue Router from ``web/vendor`` (pinned, licences beside them, see
docs/dashboard.md), and every call it makes goes to this server's ``/api/v5``.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from emqpy.api.errors import ApiError

WEB = Path(__file__).parent / "web"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
# the page itself is never cached (a new version takes effect on reload); its files are
# revalidated by their ETag
_NO_STORE = {"Cache-Control": "no-cache"}

root_router = APIRouter(include_in_schema=False)


@root_router.get("/")
async def index():
    return FileResponse(WEB / "index.html", media_type="text/html", headers=_NO_STORE)


@root_router.get("/static/{path:path}")
async def static(path: str):
    target = (WEB / path).resolve()
    if (not target.is_relative_to(WEB.resolve()) or not target.is_file()
            or target.suffix not in _TYPES):
        raise ApiError(404, "NOT_FOUND", f"No dashboard file {path!r}")
    return FileResponse(target, media_type=_TYPES[target.suffix], headers=_NO_STORE)
