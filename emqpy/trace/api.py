"""EMQX's Trace API: ``/trace`` (list, create, clear), ``/trace/{name}`` (delete),
``/trace/{name}/stop``, ``/trace/{name}/log`` (a chunk of the log from ``position``),
``/trace/{name}/log_detail`` and ``/trace/{name}/download`` (the log in a zip), with EMQX's
answers and error codes (emqx_mgmt_api_trace)."""
from __future__ import annotations

import asyncio
import io
import os
import re
import zipfile
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.trace.service import TraceError, format_trace, now_second

router = APIRouter(tags=["Trace"], dependencies=[Depends(authenticated)])

MAX_SINT32 = 2147483647
_NAME_RE = re.compile(r"^[A-Za-z]+[A-Za-z0-9-_]*$")
_EPOCH = WithJsonSchema({
    "description": "rfc3339 timestamp or epoch second", "example": "2021-11-04T18:17:38+08:00",
    "oneOf": [{"type": "integer", "description": "epoch-second", "example": 1640995200},
              {"type": "string", "format": "date-time", "example": "2022-01-01T00:00:00.000Z"}]})
_FORMATTER = WithJsonSchema({
    "description": "The formatter that will be used to format the trace log entries. Set this "
                   "to text to format the log entries as plain text (default). Set it to json "
                   "to format each log entry as a JSON object.",
    "example": "text",
    "oneOf": [{"type": "string", "enum": ["json"]}, {"type": "string", "enum": ["text"]}]})
_PAYLOAD_ENCODE = ("Determine the format of the payload format in the trace file.<br/><br/>"
                   "`text`: Text-based protocol or plain text protocol.<br/> It is recommended "
                   "when payload is JSON encoded.<br/><br/>`hex`: Binary hexadecimal encode.It "
                   "is recommended when payload is a custom binary protocol.<br/><br/>`hidden`: "
                   "payload is obfuscated as `******`")
_NAME_DESC = ("Unique name of the trace. Only ASCII letters in a-z, A-Z, 0-9 and underscore "
              "'_' are allowed.")


class TraceBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(description=_NAME_DESC, examples=["EMQX-TRACE-1"], min_length=1,
                      max_length=256, pattern=r"^[A-Za-z]+[A-Za-z0-9_-]*$")
    type: Literal["clientid", "topic", "ip_address", "ruleid"] = Field(
        description="Filter type", examples=["clientid"])
    topic: Optional[str] = Field(None, description="Specify the topic or topic filter if the "
                                                   "trace 'type' is 'topic'.",
                                 examples=["/dev/#"])
    clientid: Optional[str] = Field(None, description="Specify the MQTT clientid if the trace "
                                                      "'type' is 'clientid'.",
                                    examples=["dev-001"])
    ip_address: Optional[str] = Field(None, description="Specify the client's IP address if "
                                                        "the trace type is 'ip_address'.",
                                      examples=["127.0.0.1"])
    ruleid: Optional[str] = Field(None, examples=["my_rule"])
    payload_encode: Literal["hex", "text", "hidden"] = Field("text",
                                                             description=_PAYLOAD_ENCODE)
    start_at: Annotated[Any, _EPOCH] = None
    end_at: Annotated[Any, _EPOCH] = None
    formatter: Annotated[Optional[Literal["text", "json"]], _FORMATTER] = None


_TRACE_SCHEMA = {"type": "object", "required": ["name", "type"], "properties": {
    **{k: v for k, v in TraceBody.model_json_schema()["properties"].items()},
    "status": {"type": "string", "enum": ["running", "stopped", "waiting"],
               "description": "trace status", "example": "running"},
    "log_size": {"type": "array", "description": "trace log size",
                 "items": {"type": "object", "example": {}},
                 "example": [{"node": "emqx@127.0.0.1", "size": 1024}]}}}
_DETAIL_SCHEMA = {"type": "object", "properties": {
    "node": {"type": "string", "description": "Node name", "example": "emqx@127.0.0.1"},
    "size": {"type": "integer", "description": "file size"},
    "mtime": {"type": "integer", "description": "The last time this file is modified."}}}

NamePath = Annotated[str, Path(description="[a-zA-Z0-9-_]", examples=["EMQX-TRACE-1"])]
NodeQuery = Annotated[Optional[str], Query(description="Node name",
                                           examples=["emqx@127.0.0.1"])]


def _service(request: Request):
    return request.app.state.ctx.broker.traces  # (set up before the API starts)


def _name(name: str) -> str:
    """A trace's name from the path: one no trace can have is not found."""
    if not (0 < len(name) <= 256 and _NAME_RE.match(name)):
        raise ApiError(404, "NOT_FOUND", f"{name} NOT FOUND")
    return name


def _not_found(e: TraceError) -> ApiError:
    return ApiError(404, e.code, e.message)


def _node(request: Request, node: str | None) -> None:
    if node is not None and node != request.app.state.ctx.broker.node_name:
        raise ApiError(404, "NOT_FOUND", "Node NOT FOUND")


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


@router.get("/trace", description="List all trace",
            responses={200: {"description": "", "content": _json(
                {"type": "array", "items": _TRACE_SCHEMA})}})
async def list_traces(request: Request):
    svc = _service(request)
    svc.tracer.flush()
    node = request.app.state.ctx.broker.node_name
    now = now_second()
    traces = sorted(svc.list(), key=lambda t: -t.start_at)
    return [format_trace(t, node, svc.log_size(t), now) for t in traces]


@router.post("/trace", description="Create new trace",
             responses={200: {"description": "", "content": _json(_TRACE_SCHEMA)},
                        **error_responses({400: ["INVALID_PARAMS"],
                                           409: ["ALREADY_EXISTS", "DUPLICATE_CONDITION",
                                                 "BAD_TYPE"]})})
async def create_trace(request: Request, body: TraceBody):
    svc = _service(request)
    try:
        trace = svc.create(body.model_dump(exclude_none=True))
    except TraceError as e:
        raise ApiError(400 if e.code == "INVALID_PARAMS" else 409, e.code, e.message) from None
    return format_trace(trace, request.app.state.ctx.broker.node_name, 0, now_second())


@router.delete("/trace", description="Clear all traces", status_code=204,
               responses={204: {"description": "No Content"}})
async def clear_traces(request: Request):
    _service(request).clear()
    return Response(status_code=204)


@router.delete("/trace/{name}", description="Delete specified trace", status_code=204,
               responses={204: {"description": "Delete successfully"},
                          **error_responses({404: ["NOT_FOUND"]})})
async def delete_trace(request: Request, name: NamePath):
    try:
        _service(request).delete(_name(name))
    except TraceError as e:
        raise _not_found(e) from None
    return Response(status_code=204)


@router.put("/trace/{name}/stop", description="Stop trace by name",
            responses={200: {"description": "", "content": _json(_TRACE_SCHEMA)},
                       **error_responses({404: ["NOT_FOUND"]})})
async def stop_trace(request: Request, name: NamePath):
    try:
        _service(request).disable(_name(name))
    except TraceError as e:
        raise _not_found(e) from None
    return {"enable": False, "name": name}


@router.get("/trace/{name}/log_detail",
            description="get trace log file's metadata, such as size, last update time",
            responses={200: {"description": "", "content": _json(
                {"type": "array", "items": _DETAIL_SCHEMA})},
                **error_responses({404: ["NOT_FOUND"]})})
async def log_detail(request: Request, name: NamePath):
    try:
        path = _service(request).filename_of(_name(name))
    except TraceError as e:
        raise _not_found(e) from None
    try:
        st = os.stat(path)
    except OSError:
        return []  # (a waiting trace has no file yet)
    return [{"node": request.app.state.ctx.broker.node_name, "size": st.st_size,
             "mtime": int(st.st_mtime)}]


def _zip(path, node_name: str) -> bytes | None:
    """The log in a zip as EMQX names it inside; None when there is no log yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data:
        return None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{node_name}-{path.name}", data)
    return buf.getvalue()


@router.get("/trace/{name}/download", description="Download trace log by name",
            responses={200: {"description": "A trace zip file", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}},
                **error_responses({404: ["NOT_FOUND", "NODE_ERROR"]})})
async def download(request: Request, name: NamePath, node: NodeQuery = None):
    svc = _service(request)
    try:
        path = svc.filename_of(_name(name))
    except TraceError as e:
        raise _not_found(e) from None
    _node(request, node)
    # a log may be hundreds of MB: read and compress it off the event loop
    packed = await asyncio.to_thread(_zip, path, request.app.state.ctx.broker.node_name)
    if packed is None:
        raise ApiError(404, "NOT_FOUND", "Trace is empty")
    zip_name = f"{name}.zip"
    return Response(packed, media_type="application/x-zip",
                    headers={"content-disposition": f"attachment; filename={zip_name}"})


@router.get("/trace/{name}/log", description="view trace log",
            responses={200: {"description": "", "content": _json({
                "type": "object", "properties": {
                    "items": {"type": "string", "example": "TEXT-LOG-ITEMS"},
                    "meta": {"type": "object", "properties": {
                        "bytes": {"type": "integer", "default": 1000, "minimum": 0,
                                  "maximum": MAX_SINT32,
                                  "description": "Maximum number of bytes to send in "
                                                 "response"},
                        "position": {"type": "integer", "default": 0,
                                     "description": "Offset from the current trace "
                                                    "position."}}}}})},
                **error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND", "NODE_ERROR"],
                                   503: ["SERVICE_UNAVAILABLE"]})})
async def read_log(request: Request, name: NamePath,
                   bytes: Annotated[int, Query(ge=0, le=MAX_SINT32,
                                               description="Maximum number of bytes to send "
                                                           "in response")] = 1000,
                   position: Annotated[int, Query(description="Offset from the current trace "
                                                              "position.")] = 0,
                   node: NodeQuery = None):
    svc = _service(request)
    _name(name)
    _node(request, node)
    try:
        data, next_pos = await asyncio.to_thread(svc.read, name, position, bytes)
    except TraceError as e:
        raise _not_found(e) from None
    except MemoryError:
        raise ApiError(503, "SERVICE_UNAVAILABLE", "Requested chunk size too big") from None
    return {"meta": {"position": next_pos, "bytes": bytes},
            "items": data.decode("utf-8", "replace")}
