"""REST API of the ban list (EMQX's "Banned" tag)."""
from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.pagination import Page, page_response, page_schema, paginate
from emqpy.banned.banned import KINDS, Ban, BanError, normalize
from emqpy.timefmt import parse_expiry, rfc3339

router = APIRouter(tags=["Banned"], dependencies=[Depends(authenticated)])

As = Literal["clientid", "username", "peerhost", "clientid_re", "username_re", "peerhost_net"]
_AS_DESC = ("Ban method, which can be exact client ID, client ID regular expression, exact "
            "username, username regular expression,<br/>IP address or an IP address range.")
_EPOCH = {"oneOf": [{"type": "integer", "description": "epoch-second", "example": 1640995200},
                    {"type": "string", "format": "date-time",
                     "example": "2022-01-01T00:00:00.000Z"}]}
At = Annotated[Any, WithJsonSchema({
    "description": "The start time of the ban, the format is rfc3339, the default is the time "
                   "when the operation was initiated.",
    "example": "2021-10-25T21:48:47+08:00", **_EPOCH})]
Until = Annotated[Any, WithJsonSchema({
    "default": "infinity",
    "description": "The end time of the ban, the format is rfc3339, the default is infinity.",
    "example": "2021-10-25T21:53:47+08:00",
    "oneOf": [_EPOCH, {"type": "string", "enum": ["infinity"]}]})]


class BanBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    as_: As = Field(alias="as", description=_AS_DESC, examples=["username"])
    who: str = Field(description="Ban object, specific client ID, username or IP address.",
                     examples=["Banned name"])
    by: Optional[str] = Field(None, description="Initiator of the ban.", examples=["mgmt_api"])
    reason: Optional[str] = Field(None, description="Ban reason, record the reason why the "
                                                    "current object was banned.",
                                  examples=["Too many requests"])
    at: At = None
    until: Until = "infinity"


_BAN_SCHEMA = {"$ref": "#/components/schemas/BanBody"}


def _format(ban: Ban) -> dict:
    return {"as": ban.kind, "who": ban.who, "by": ban.by, "reason": ban.reason,
            "at": rfc3339(ban.at),
            "until": "infinity" if ban.until is None else rfc3339(ban.until)}


def _banned(request: Request):
    return request.app.state.ctx.broker.banned


def _time(value, what: str) -> float | None:
    try:
        return parse_expiry(value)
    except ValueError as e:
        raise ApiError(400, "BAD_REQUEST", f"{what}: {e}") from None


# -- list -----------------------------------------------------------------------------------------

_LIKE = {"like_clientid": ("clientid", "clientid_re"), "like_username": ("username",
                                                                         "username_re"),
         "like_peerhost": ("peerhost",), "like_peerhost_net": ("peerhost_net",)}


@router.get(
    "/banned",
    description="List all currently banned client IDs, usernames and IP addresses.<br/>"
                "Filters are supported. Since filters are mutually exclusive, only one filter "
                "is allowed in a query.",
    responses={200: {"description": "", "content": {"application/json": {
        "schema": page_schema(_BAN_SCHEMA)}}},
        **error_responses({400: ["BAD_REQUEST"]})})
async def list_banned(
    request: Request, page: Page,
    clientid: Annotated[Optional[str], Query(
        description="Query the banned objects with an exact client ID.")] = None,
    username: Annotated[Optional[str], Query(
        description="Query the banned objects with an exact username.")] = None,
    peerhost: Annotated[Optional[str], Query(
        description="Query the banned objects with an exact IP address.",
        examples=["127.0.0.1"])] = None,
    like_clientid: Annotated[Optional[str], Query(
        description="Fuzzy query banned objects with a regular expression for client ID.")
    ] = None,
    like_username: Annotated[Optional[str], Query(
        description="Fuzzy query banned objects with a regular expression for username.")
    ] = None,
    like_peerhost: Annotated[Optional[str], Query(
        description="Fuzzy query banned objects with a regular expression for IP address.",
        examples=["127.0.0.1"])] = None,
    like_peerhost_net: Annotated[Optional[str], Query(
        description="Fuzzy query banned objects with a regular expression for CIDR.",
        examples=["192.1.0.0/16"])] = None,
):
    banned = _banned(request)
    filters = {k: v for k, v in (
        ("clientid", clientid), ("username", username), ("peerhost", peerhost),
        ("like_clientid", like_clientid), ("like_username", like_username),
        ("like_peerhost", like_peerhost), ("like_peerhost_net", like_peerhost_net),
    ) if v is not None}
    if len(filters) > 1:
        raise ApiError(400, "BAD_REQUEST", "too_many_filters")
    if not filters:
        return await page_response(paginate(banned.all(), page), _format)
    (name, value), = filters.items()
    if name in ("clientid", "username", "peerhost"):
        try:
            who, _ = normalize(name, value)
        except BanError as e:
            raise ApiError(400, "BAD_REQUEST", str(e)) from None
        ban = banned.get(name, who)
        return await page_response(paginate([] if ban is None else [ban], page), _format)
    try:
        rx = re.compile(value)
    except re.error as e:
        raise ApiError(400, "BAD_REQUEST", json.dumps({
            "message": "The filter is not a validation regex expression",
            "reason": str(e.msg), "position": e.pos, "filter": value})) from None
    kinds = _LIKE[name]
    bans = [b for b in banned.all() if b.kind in kinds and rx.search(b.who)]
    return await page_response(paginate(bans, page), _format)


# -- create / delete ------------------------------------------------------------------------------

@router.post(
    "/banned", description="Add a client ID, username or IP address to the blacklist.",
    responses={200: {"description": "", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"data": {"type": "array", "items": _BAN_SCHEMA}}}}}},
        **error_responses({400: ["ALREADY_EXISTS", "BAD_REQUEST"]})})
async def create_banned(request: Request, body: BanBody):
    try:
        who, matcher = normalize(body.as_, body.who)
    except BanError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    now = time.time()
    at = now if body.at is None else _time(body.at, "at")
    if at is None:
        raise ApiError(400, "BAD_REQUEST", "at: expected an RFC 3339 date-time or epoch seconds")
    until = _time(body.until, "until")
    if until is not None and until <= now:
        raise ApiError(400, "BAD_REQUEST",
                       f"Cannot create expired banned, {int(at)} to {int(until)}")
    ban = Ban(body.as_, who, "mgmt_api" if body.by is None else body.by,
              "" if body.reason is None else body.reason, float(int(at)),
              None if until is None else float(int(until)), matcher)
    try:
        _banned(request).create(ban)
    except KeyError as e:
        raise ApiError(400, "ALREADY_EXISTS", json.dumps(_format(e.args[0]))) from None
    # EMQX answers with the ban itself (its document shows a "data" wrapper it never sends).
    return _format(ban)


@router.delete("/banned", status_code=204, response_class=Response,
               description="Clear all banned data.",
               responses={204: {"description": "No Content"}})
async def clear_banned(request: Request):
    _banned(request).clear()
    return Response(status_code=204)


@router.delete(
    "/banned/{as}/{who:path}", status_code=204, response_class=Response,
    description="Remove a client ID, username or IP address from the blacklist.",
    responses={204: {"description": "Delete banned success"},
               **error_responses({404: ["NOT_FOUND"]})})
async def delete_banned(
    request: Request,
    as_: Annotated[As, Path(alias="as", description=_AS_DESC, examples=["username"])],
    who: Annotated[str, Path(description="Ban object, specific client ID, username or IP "
                                         "address.", examples=["Badass"])],
):
    try:
        norm, _ = normalize(as_, who)
    except BanError:
        norm = who  # not a valid target, so certainly not banned
    if not _banned(request).delete(as_, norm):
        raise ApiError(404, "NOT_FOUND", f"{as_}: {who} not found")
    return Response(status_code=204)


assert set(KINDS) == set(As.__args__)
