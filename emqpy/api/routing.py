"""Request rules every route of the API gets without code of its own.

``create_app`` installs both (``RawPathRouting`` as a middleware, ``request_rules`` as an
app-wide dependency), so every route of every feature module gets them.

Path parameters are routed on the raw path. uvicorn percent-decodes the path before routing, so
a client id ``device/42`` sent as ``/clients/device%2F42`` would be split at its ``/`` and miss
its route. ``RawPathRouting`` rebuilds the routed path from the raw one, decoding each segment
but keeping ``%``, ``/``, ``?`` and ``#`` escaped inside it; ``request_rules`` (the first
dependency of every route) then decodes each path parameter, so handlers see the client's value
intact.

A JSON-body operation refuses a body of another media type with EMQX's 415
``UNSUPPORTED_MEDIA_TYPE``, after authentication (EMQX authorizes a request before it reads the
body). As in EMQX, a request without a body is not checked, and a body without a Content-Type
is refused; ``application/json`` may carry parameters (``; charset=utf-8``). Operations that
declare other media types as well (``openapi_extra`` request bodies) accept those too.
"""
from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from fastapi import Request

from emqpy.api import auth
from emqpy.api.errors import ApiError

JSON = "application/json"
_AUTH_POLICIES = (auth.dashboard_user, auth.authenticated)  # strictest first


# Kept escaped inside a segment: "/" would split it, "%" would make decoding ambiguous, and
# "?" / "#" would cut the URL Starlette rebuilds from the path (request.url, redirects).
# Control characters too: Starlette's ``{x:path}`` pattern (``.*``) stops at a newline.
_CONTROL = {c: f"%{c:02X}" for c in (*range(0x20), 0x7F)}
_IN_SEGMENT = str.maketrans({"%": "%25", "/": "%2F", "?": "%3F", "#": "%23", **_CONTROL})
_IN_DECODED_PATH = str.maketrans({"%": "%25", "?": "%3F", "#": "%23"})


def routed_path(scope) -> str:
    """The path to route on: each raw segment decoded, with ``%``, ``/``, ``?``, ``#`` and control
    characters inside a segment left escaped so that the segment stays one path parameter."""
    raw = scope.get("raw_path")
    if raw is None:  # a server that only gives the decoded path: its "/" are all separators
        return scope["path"].translate(_IN_DECODED_PATH)
    if b"%" not in raw:  # nothing was encoded: the decoded path is the raw one
        return scope["path"]
    segments = (unquote_to_bytes(s).decode("utf-8", "replace") for s in raw.split(b"/"))
    return "/".join(s.translate(_IN_SEGMENT) for s in segments)


class RawPathRouting:
    """Pure ASGI middleware: route on the raw path (see the module docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = routed_path(scope)
            if path != scope["path"]:
                scope = dict(scope, path=path)
        return await self.app(scope, receive, send)


def body_media_types(route) -> set[str]:
    """The media types a route declares for its request body: FastAPI's body parameter (JSON
    unless Form/File) and an ``openapi_extra`` request body."""
    types = set()
    body_field = getattr(route, "body_field", None)
    if body_field is not None:
        types.add(getattr(body_field.field_info, "media_type", JSON))
    extra = (getattr(route, "openapi_extra", None) or {}).get("requestBody") or {}
    types.update(extra.get("content") or ())
    return types


def _auth_policy(dependant):
    """The authentication a route requires (the stricter one if it names both), or None."""
    calls, stack = set(), [dependant]
    while stack:
        dep = stack.pop()
        calls.add(dep.call)
        stack.extend(dep.dependencies)
    return next((policy for policy in _AUTH_POLICIES if policy in calls), None)


def _has_body(request: Request) -> bool:
    # cowboy's has_body: a non-zero Content-Length, or a chunked body.
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


async def request_rules(request: Request) -> None:
    """App-wide dependency, solved before each route's own dependencies and parameters: decode
    the path parameters, then refuse a body the route does not take (see the module docstring)."""
    params = request.path_params
    for name, value in params.items():
        if isinstance(value, str) and "%" in value:  # escaped by routed_path
            params[name] = unquote(value)
    if not _has_body(request):
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == JSON:
        return
    route = request.scope.get("route")
    declared = body_media_types(route) if route is not None else set()
    if JSON not in declared or media_type in declared:
        return
    policy = _auth_policy(route.dependant)
    if policy is not None:  # answer 401 first, as EMQX does; the route's own check is not reached
        await policy(request, None, None)
    raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", f"content-type:{JSON} Required")
