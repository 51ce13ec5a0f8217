"""REST API of data backups (EMQX's "Data Backup" tag): ``/data/export``, ``/data/import``,
``/data/files`` and ``/data/files/{filename}``."""
from __future__ import annotations

import asyncio
import json
from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.pagination import Page, page_response, page_schema, paginate
from emqpy.backup import archive

router = APIRouter(tags=["Data Backup"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)

_INFO_EXAMPLE = {"node": "emqx@127.0.0.1", "size": 22740,
                 "filename": "emqx-export-2023-11-23-19-13-19.043.tar.gz",
                 "created_at": "2023-11-23T19:13:19+02:00", "created_at_sec": 1700759599}
_INFO_SCHEMA = {"type": "object", "required": ["node", "filename", "created_at"], "properties": {
    "node": {"type": "string", "description": "Node name"},
    "filename": {"type": "string", "description": "Data backup file name"},
    "created_at": {"type": "string", "description": "Data backup file creation date and time"},
    "created_at_sec": {"type": "integer"}, "size": {"type": "integer"}}}


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table_sets: Optional[list[str]] = Field(
        None, description="Sets of tables to export. Exports all if omitted. Valid values: "
                          "api_keys, banned, builtin_authn, builtin_authz, builtin_retainer, "
                          "dashboard_users.")
    root_keys: Optional[list[str]] = Field(
        None, description="Sets of root configuration keys to export. Exports all if omitted.")


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    node: Optional[str] = Field(None, description="Node name")
    filename: str = Field(description="Data backup file name")


def _broker(request: Request):
    return request.app.state.ctx.broker


def _check_node(broker, node: str | None) -> None:
    if node is not None and node != broker.node_name:
        raise ApiError(400, "BAD_REQUEST", f"Unknown node: {node}")


@router.post("/data/export", summary="Export a data backup file",
             description="Export a data backup file",
             responses={200: {"description": "", "content": {"application/json": {
                 "schema": _INFO_SCHEMA, "example": _INFO_EXAMPLE}}},
                 **error_responses({400: ["BAD_REQUEST"], 500: ["INTERNAL_ERROR"]})})
async def data_export(request: Request, body: Optional[ExportBody] = None):
    body = body or ExportBody()
    try:
        info = await archive.export(_broker(request), table_sets=body.table_sets,
                                    root_keys=body.root_keys)
    except archive.BackupError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    except OSError as e:
        raise ApiError(500, "INTERNAL_ERROR", f"Error processing export: {e}") from None
    return info


@router.post("/data/import", status_code=204, summary="Import a data backup file",
             description="Import a data backup file",
             responses=error_responses({400: ["BAD_REQUEST"]}))
async def data_import(request: Request, body: ImportBody):
    broker = _broker(request)
    _check_node(broker, body.node)
    try:
        result = await archive.import_file(broker, body.filename)
    except archive.BackupError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    if not result.ok:
        raise ApiError(400, "BAD_REQUEST", result.message())
    return Response(status_code=204)


@router.get("/data/files", summary="List backup files", description="List backup files",
            responses={200: {"description": "", "content": {"application/json": {
                "schema": page_schema(_INFO_SCHEMA)}}},
                **error_responses({400: ["BAD_REQUEST"]})})
async def list_files(request: Request, page: Page):
    files = await asyncio.to_thread(archive.list_files, _broker(request))
    return await page_response(paginate(files, page))


@router.post("/data/files", status_code=204, summary="Upload a data backup file",
             description="Upload a data backup file",
             openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {
                 "type": "object", "properties": {
                     "filename": {"type": "string", "format": "binary"}}}}}}},
             responses=error_responses({400: ["BAD_REQUEST"]}))
async def upload_file(request: Request):
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "BAD_REQUEST", "Missing required parameter: filename")
    try:
        form = await request.form()
    except Exception as e:  # malformed multipart body
        raise ApiError(400, "BAD_REQUEST", f"bad multipart body: {e}") from None
    upload = form.get("filename")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise ApiError(400, "BAD_REQUEST", "Missing required parameter: filename")
    content = await upload.read()
    try:
        await asyncio.to_thread(archive.upload, _broker(request), upload.filename, content)
    except archive.BackupError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=204)


FileName = Annotated[str, Path(description="Data backup file name")]
NodeQuery = Annotated[Optional[str], Query(description="Node name")]
_FILE_ERRORS = error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]})


@router.get("/data/files/{filename}", summary="Download a data backup file",
            description="Download a data backup file",
            responses={200: {"description": "The backup file", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}},
                **_FILE_ERRORS})
async def download_file(request: Request, filename: FileName, node: NodeQuery = None):
    broker = _broker(request)
    _check_node(broker, node)
    try:
        data = await asyncio.to_thread(archive.read_file, broker, filename)
    except archive.NotFound as e:
        raise ApiError(404, "NOT_FOUND", str(e)) from None
    except archive.BackupError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(data, media_type="application/octet-stream", headers={
        "content-disposition": f"attachment; filename={json.dumps(filename)}"})


@router.delete("/data/files/{filename}", status_code=204, summary="Delete a data backup file",
               description="Delete a data backup file", responses=_FILE_ERRORS)
async def delete_file(request: Request, filename: FileName, node: NodeQuery = None):
    broker = _broker(request)
    _check_node(broker, node)
    try:
        await asyncio.to_thread(archive.delete_file, broker, filename)
    except archive.NotFound as e:
        raise ApiError(404, "NOT_FOUND", str(e)) from None
    except archive.BackupError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=204)
