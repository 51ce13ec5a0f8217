"""EMQX error codes, the error body, and the handlers that turn every failure into one.

Every error response is ``{"code": CODE, "message": text, "reason": text}``: ``message`` is what
EMQX's server sends, ``reason`` is the field name in EMQX's HTTP API guide; both carry the same
text so clients written from either work.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import compile_path

log = logging.getLogger("emqpy.api")

# (code, description): the seed guide's table, plus the names EMQX 5.8 uses for the two auth
# failures (BAD_USERNAME_OR_PWD, BAD_API_KEY_OR_SECRET) and the codes its auth layer sends.
ERROR_CODES: list[tuple[str, str]] = [
    ("WRONG_USERNAME_OR_PWD", "Wrong username or pwd"),
    ("WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET", "Wrong username & pwd or key & secret"),
    ("BAD_USERNAME_OR_PWD", "Bad username or password (EMQX 5.8 name of WRONG_USERNAME_OR_PWD)"),
    ("BAD_API_KEY_OR_SECRET",
     "Bad API key or secret (EMQX 5.8 name of WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET)"),
    ("BAD_REQUEST", "Request parameters are not legal"),
    ("NOT_MATCH", "Conditions are not matched"),
    ("ALREADY_EXISTS", "Resource already existed"),
    ("BAD_CONFIG_SCHEMA", "Configuration data is not legal"),
    ("BAD_LISTENER_ID", "Bad listener ID"),
    ("BAD_NODE_NAME", "Bad Node Name"),
    ("BAD_RPC", "RPC Failed. Check the cluster status and the requested node status"),
    ("BAD_TOPIC", "Topic syntax error, Topic needs to comply with the MQTT protocol standard"),
    ("EXCEED_LIMIT", "Create resources that exceed the maximum limit or minimum limit"),
    ("INVALID_PARAMETER", "Request parameters is not legal and exceeds the boundary value"),
    ("CONFLICT", "Conflicting request resources"),
    ("NO_DEFAULT_VALUE", "Request parameters do not use default values"),
    ("DEPENDENCY_EXISTS", "Resource is dependent by another resource"),
    ("MESSAGE_ID_SCHEMA_ERROR", "Message ID parsing error"),
    ("INVALID_ID", "Bad ID schema"),
    ("MESSAGE_ID_NOT_FOUND", "Message ID does not exist"),
    ("NOT_FOUND", "Resource was not found or does not exist"),
    ("CLIENTID_NOT_FOUND", "Client ID was not found or does not exist"),
    ("CLIENT_NOT_FOUND", "Client was not found or does not exist(usually not a MQTT client)"),
    ("RESOURCE_NOT_FOUND", "Resource not found"),
    ("TOPIC_NOT_FOUND", "Topic not found"),
    ("USER_NOT_FOUND", "User not found"),
    ("INTERNAL_ERROR", "Server inter error"),
    ("SERVICE_UNAVAILABLE", "Service unavailable"),
    ("SOURCE_ERROR", "Source error"),
    ("UPDATE_FAILED", "Update failed"),
    ("REST_FAILED", "Reset source or config failed"),
    ("CLIENT_NOT_RESPONSE", "Client not responding"),
    ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
    ("AUTHORIZATION_HEADER_ERROR", "Missing or malformed Authorization header"),
    ("TOKEN_TIME_OUT", "Bearer token expired; get a new one with POST /login"),
    ("BAD_TOKEN", "Unknown or invalid bearer token"),
    ("API_KEY_NOT_ALLOW", "API keys may not be used on this path; use a dashboard user"),
    ("LOGIN_LOCKED", "Too many failed logins for this user; try again later"),
    ("WRONG_TOKEN_OR_USERNAME", "The token does not belong to the given username"),
    ("ERROR_PWD_NOT_MATCH", "The old password does not match"),
    ("NOT_ALLOWED", "The operation is not allowed"),
    ("METHOD_NOT_ALLOWED", "The HTTP method is not allowed on this path"),
    ("TEST_FAILED", "A connector or action probe failed"),
]
ERROR_CODE_NAMES = [c for c, _ in ERROR_CODES]


class ApiError(Exception):
    """Raise from a handler to answer ``status`` with an EMQX error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str) -> dict:
    return {"code": code, "message": message, "reason": message}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def error_responses(spec: dict[int, Iterable[str]]) -> dict[int, dict]:
    """OpenAPI ``responses`` entries for the error codes an operation can return, e.g.
    ``responses=error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]})``."""
    out = {}
    for status, codes in spec.items():
        out[status] = {
            "description": ", ".join(codes),
            "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "enum": list(codes)},
                    "message": {"type": "string"},
                    "reason": {"type": "string", "description": "same text as message"},
                },
            }}},
        }
    return out


def _loc(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return f"{where} {'.'.join(rest)}" if rest else where
    return ".".join(parts)


def validation_message(exc: RequestValidationError) -> str:
    msgs = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            msgs.append(f"malformed JSON body: {ctx.get('error', 'invalid JSON')}")
            continue
        msg = err.get("msg", "invalid value")
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") in (
                "model_attributes_type", "dict_type", "missing"):
            msgs.append("body: a JSON object is expected (with Content-Type: application/json)")
            continue
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        msgs.append(f"{_loc(err.get('loc', ()))}: {msg}")
    return "; ".join(msgs) or "invalid request"


_STATUS_CODES = {400: "BAD_REQUEST", 401: "BAD_TOKEN", 403: "NOT_ALLOWED", 404: "NOT_FOUND",
                 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 415: "UNSUPPORTED_MEDIA_TYPE"}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path (Starlette's 405 names only those
    of the first route that matched the path, and FastAPI makes a route per method)."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.path_format and compile_path(route.path_format)[0].match(path):
            methods.update(route.methods)
    return sorted(methods)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error_response(400, "BAD_REQUEST", validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            msg = f"Request path not found: {request.url.path}"
        elif exc.status_code == 405:
            msg = f"Method {request.method} is not allowed on {request.url.path}"
            headers = {"allow": ", ".join(allowed_methods(request))}
            return error_response(405, "METHOD_NOT_ALLOWED", msg, headers)
        else:
            msg = str(exc.detail)
        code = _STATUS_CODES.get(exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500
                                 else "BAD_REQUEST")
        return error_response(exc.status_code, code, msg, getattr(exc, "headers", None))


class InternalErrorMiddleware:
    """Pure ASGI middleware: any exception a handler lets escape becomes a logged 500
    INTERNAL_ERROR (inside Starlette's ServerErrorMiddleware, so it is not re-raised)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def _send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception:
            log.exception("internal error in %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for a clean error response; drop the connection
                raise
            body = json.dumps(error_body("INTERNAL_ERROR", "Internal server error, see the log")
                              ).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
