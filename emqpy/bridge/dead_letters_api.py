"""REST API of an action's dead letters (an emqpy extension, emqpy/bridge/dead_letters.py):

    GET    /actions/{id}/dead_letters?page=&limit=    the list, oldest first, paged as EMQX's lists
    POST   /actions/{id}/dead_letters/retry           send them again: all, or {"ids": [...]}
    DELETE /actions/{id}/dead_letters                 drop them all
    DELETE /actions/{id}/dead_letters/{letter_id}     drop one
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Optional

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.pagination import Page, page_response, page_schema, sliced_page
from emqpy.config.bridges import ACTION_TYPES
from emqpy.timefmt import rfc3339

from .dead_letters import MAX_PER_ACTION
from .delivery import decode
from .service import NotFound, parse_id

router = APIRouter(tags=["Actions"], dependencies=[Depends(authenticated)],
                   responses={**AUTH_RESPONSES,
                              **error_responses({503: ["SERVICE_UNAVAILABLE"]})})

_EXT = ("emqpy extension (EMQX has no dead letters): the messages this action gave up on — a "
        "final failure (`failed`, `retried.failed`: a status or reason code that is not "
        "retried) or a `request_ttl` expiry (`dropped.expired`) — kept in the node's database, "
        f"at most {MAX_PER_ACTION:,} per action (past that the oldest go, counted in "
        "`meta.dropped`).")
_OPENAPI = {"x-emqpy-extension": True}
E404 = error_responses({404: ["NOT_FOUND"]})
E400_404 = error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]})

_LETTER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "description": "The dead letter's id (for retry/delete)"},
        "failed_at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string", "enum": ["failed", "expired"],
                 "description": "failed: a final failure; expired: request_ttl ran out"},
        "reason": {"type": "string", "example": "status_code 400"},
        "message": {"type": "object", "description": "The rule's output the action was sent"},
        "envelope": {"type": "object",
                     "description": "The event columns the action's templates read that the "
                                    "rule's output does not have"},
    },
}
_PAGE = page_schema(_LETTER)
_PAGE["properties"]["meta"]["properties"]["dropped"] = {
    "type": "integer", "description": "Dead letters dropped because the list was full"}


class RetryBody(BaseModel):
    ids: Optional[list[int]] = Field(
        None, description="The dead letters to send again; all of them when left out")


class RetryAnswer(BaseModel):
    retried: int = Field(description="Dead letters queued again in the action's buffer")
    not_found: list[int] = Field(description="Requested ids that are not dead letters of "
                                             "this action")


def _store_and_action(request: Request, id: str):
    svc = request.app.state.ctx.broker.bridges if request.app.state.ctx.broker else None
    if svc is None or svc.dead_letters is None:
        raise ApiError(503, "SERVICE_UNAVAILABLE", "data integration is not running")
    try:
        return svc.dead_letters, svc.kinds["actions"].get(*parse_id(id, ACTION_TYPES))
    except NotFound as e:
        raise ApiError(404, "NOT_FOUND", str(e)) from None


def _text(value):
    """A value of a stored message made JSON-safe (payload bytes that are not UTF-8 were
    kept as surrogate escapes: shown as U+FFFD)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _letter(row) -> dict:
    try:
        _, selected, envelope = decode(row["record"])
    except ValueError:
        selected, envelope = {}, {}
    return {"id": row["id"], "failed_at": rfc3339(row["failed_at"], ms=True),
            "kind": row["kind"], "reason": row["reason"], "message": _text(selected),
            "envelope": _text(envelope)}


@router.get("/actions/{id}/dead_letters", responses=E404, openapi_extra={
    **_OPENAPI, "responses": {"200": {"description": "The dead letters, oldest first",
                                      "content": {"application/json": {"schema": _PAGE}}}}},
    summary="List an action's dead letters (emqpy extension)",
    description=_EXT)
async def list_dead_letters(request: Request, id: str, page: Page) -> Response:
    store, a = _store_and_action(request, id)
    rows, total, dropped = await asyncio.to_thread(store.page, a.id, page.offset, page.limit)
    result = sliced_page(rows, total, page)
    result["meta"]["dropped"] = dropped
    return await page_response(result, _letter)


@router.post("/actions/{id}/dead_letters/retry", responses=E400_404,
             openapi_extra=_OPENAPI, summary="Send an action's dead letters again "
             "(emqpy extension)", description=(
                 "The dead letters (all, or those in `ids`) go back to the end of the "
                 "action's buffer, with a new `request_ttl`, and leave the list; one that "
                 "fails again comes back with a new id. 400 when the action is not running "
                 "(disabled, or its connector is)."))
async def retry_dead_letters(request: Request, id: str,
                             body: Annotated[Optional[RetryBody], Body()] = None) -> RetryAnswer:
    store, a = _store_and_action(request, id)
    worker = a.worker
    if worker is None:
        raise ApiError(400, "BAD_REQUEST", f"action {a.id} is not running")
    ids = body.ids if body is not None else None
    records = await asyncio.to_thread(store.records, a.id, ids)
    if a.worker is not worker:  # stopped or restarted meanwhile
        raise ApiError(400, "BAD_REQUEST", f"action {a.id} is not running")
    queued = []
    for letter_id, record in records:
        try:
            _, selected, envelope = decode(record)
        except ValueError:  # never written by this code: left in the list
            continue
        # queued on disk before the dead letter goes: a crash in between sends it twice,
        # never loses it
        worker.submit(selected, envelope, None)
        queued.append(letter_id)
    await asyncio.to_thread(store.delete, a.id, queued)
    found = {i for i, _ in records}
    return RetryAnswer(retried=len(queued),
                       not_found=[i for i in ids if i not in found] if ids else [])


@router.delete("/actions/{id}/dead_letters", status_code=204, responses=E404,
               openapi_extra=_OPENAPI, summary="Drop all of an action's dead letters "
               "(emqpy extension)", description="The list is emptied and its drop count reset.")
async def delete_dead_letters(request: Request, id: str) -> Response:
    store, a = _store_and_action(request, id)
    await asyncio.to_thread(store.delete, a.id)
    return Response(status_code=204)


@router.delete("/actions/{id}/dead_letters/{letter_id}", status_code=204, responses=E404,
               openapi_extra=_OPENAPI, summary="Drop one of an action's dead letters "
               "(emqpy extension)")
async def delete_dead_letter(request: Request, id: str, letter_id: int) -> Response:
    store, a = _store_and_action(request, id)
    if not await asyncio.to_thread(store.delete, a.id, [letter_id]):
        raise ApiError(404, "NOT_FOUND", f"no dead letter {letter_id} of action {a.id}")
    return Response(status_code=204)

