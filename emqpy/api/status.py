"""GET /status and /api/v5/status: the unauthenticated health check (200 running, 503 not)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from emqpy import EMQX_VERSION

router = APIRouter(tags=["Status"])
root_router = APIRouter(include_in_schema=False)

_DESC = ("Serves as a health check for the node. Returns the status of the node and the "
         "application. Requires no authentication. Returns status code 200 if the broker is up "
         "and running, 503 otherwise. GET /status (without the /api/v5 prefix) is an alias.")
_RESPONSES = {
    200: {"description": "Running. With format=json: {\"rel_vsn\", \"node_name\", "
                         "\"broker_status\", \"app_status\"}; otherwise text such as "
                         "\"Node emqx@127.0.0.1 is started\\nemqx is running\"",
          "content": {"text/plain": {"schema": {"type": "string"}},
                      "application/json": {"schema": {"type": "object", "properties": {
                          "rel_vsn": {"type": "string"}, "node_name": {"type": "string"},
                          "broker_status": {"type": "string"},
                          "app_status": {"type": "string"}}}}}},
    503: {"description": "The broker is not running (app_status \"not_running\")"},
}

# EMQX's `format` is a free string: "json" picks the JSON body, any other value the text one.
Format = Annotated[str, Query(
    description="'json' for a JSON object; anything else (default 'text') for a free text body")]


def _status(request: Request, format: str):
    broker = request.app.state.ctx.broker
    running = broker.running
    node = broker.node_name
    code = 200 if running else 503
    headers = {"retry-after": "15"}  # as EMQX sends with every status answer
    if format == "json":
        return JSONResponse({
            "rel_vsn": EMQX_VERSION,
            "node_name": node,
            "broker_status": "started" if running else "stopped",
            "app_status": "running" if running else "not_running",
        }, status_code=code, headers=headers)
    text = (f"Node {node} is {'started' if running else 'stopped'}\n"
            f"emqx is {'running' if running else 'not_running'}")
    return PlainTextResponse(text, status_code=code, headers=headers)


@router.get("/status", summary="Node health check", description=_DESC, responses=_RESPONSES,
            response_class=PlainTextResponse)
async def get_status(request: Request, format: Format = "text"):
    return _status(request, format)


@root_router.get("/status")
async def get_root_status(request: Request, format: Format = "text"):
    return _status(request, format)
