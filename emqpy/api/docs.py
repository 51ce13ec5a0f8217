"""Swagger UI at /api-docs/index.html and the OpenAPI document at /api-docs/swagger.json.

The UI's JavaScript and CSS come from the ``swagger-ui-bundle`` package and are served from
here, so the page works without internet access.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from emqpy.api.errors import error_response

router = APIRouter(include_in_schema=False)

try:
    from swagger_ui_bundle import swagger_ui_path as _ASSETS
    _ASSETS = Path(str(_ASSETS))
except ImportError:  # pragma: no cover - a dependency; the page then says what is missing
    _ASSETS = None

_ASSET_TYPES = {".js": "application/javascript", ".css": "text/css", ".png": "image/png",
                ".map": "application/json"}
_ASSET_NAMES = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                "favicon-32x32.png", "favicon-16x16.png", "index.css", "oauth2-redirect.html",
                "swagger-ui.css.map", "swagger-ui-bundle.js.map",
                "swagger-ui-standalone-preset.js.map"}

_INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>EMQX API (emqpy)</title>
  <link rel="stylesheet" type="text/css" href="swagger-ui.css">
  <link rel="stylesheet" type="text/css" href="index.css">
  <link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script src="swagger-initializer.js" charset="UTF-8"></script>
</body>
</html>
"""

_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "swagger.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"""


@router.get("/api-docs")
async def _docs_root():
    return RedirectResponse("/api-docs/index.html", status_code=302)


@router.get("/api-docs/index.html")
async def _index():
    return HTMLResponse(_INDEX)


@router.get("/api-docs/swagger-initializer.js")
async def _init():
    return Response(_INIT, media_type="application/javascript")


@router.get("/api-docs/swagger.json")
async def _swagger_json(request: Request):
    return JSONResponse(request.app.openapi())


@router.get("/api-docs/{name}")
async def _asset(name: str):
    if _ASSETS is None or name not in _ASSET_NAMES or not (_ASSETS / name).is_file():
        return error_response(404, "NOT_FOUND", f"Request path not found: /api-docs/{name}")
    return FileResponse(_ASSETS / name, media_type=_ASSET_TYPES.get(Path(name).suffix,
                                                                       "text/html"))
