"""The one pagination helper of every list endpoint (EMQX's ``page``/``limit`` + ``meta``).

    from emqpy.api.pagination import Page, paginate, page_response, scan_page

    @router.get("/banned")
    async def list_banned(request: Request, page: Page):
        return await page_response(paginate(bans, page), format_ban)

``page`` is 1 or more with no upper bound (a page past the end is empty, as in EMQX), ``limit``
1..10000 (EMQX's ``?MAX_ROW_LIMIT``); anything else is 400 BAD_REQUEST naming the parameter.
Response: ``{"data": [...], "meta": {"page", "limit", "count", "hasnext"}}``; ``count`` is left
out where EMQX leaves it out (fuzzy searches, whose total is not computed).

A page can hold 10,000 rows of a kilobyte each, and the API runs in the broker's event loop:
``page_response`` formats and serialises the rows a slice at a time and lets the loop run
between slices, so MQTT traffic is never held up for the whole page (bench/api_load.py).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, AsyncIterator, Callable, Iterable, Sequence

import orjson
from fastapi import Depends, Query
from starlette.responses import Response, StreamingResponse

MAX_LIMIT = 10000  # EMQX's ?MAX_ROW_LIMIT (emqx_dashboard_swagger)
DEFAULT_LIMIT = 100
# Formatting and serialising a page gives the event loop a turn whenever it has worked this
# long: a client row takes ~8 µs, so 10,000 of them would otherwise hold MQTT traffic ~80 ms.
# A PUBLISH waits for a slice of every request in progress, twice (read, then write): 0.5 ms
# gave a p99 of 8.9 ms under bench/api_load.py's load where 1 ms gave 13 ms.
SLICE_SECONDS = 0.0005
CHECK_ROWS = 25  # rows between clock checks (~0.2 ms of client rows)


@dataclass(frozen=True)
class PageParams:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _page_params(
    page: Annotated[int, Query(ge=1, description="Page number of the results to fetch.",
                               examples=[1])] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Results per page(max 10000)",
                                examples=[50])] = DEFAULT_LIMIT,
) -> PageParams:
    return PageParams(page, limit)


Page = Annotated[PageParams, Depends(_page_params)]


def paginate(rows: Iterable, params: PageParams, total: int | None = None, *,
             count: bool = True) -> dict:
    """The page ``params`` asks for out of ``rows`` (every row, in listing order): a sequence,
    or an iterator whose ``total`` is known (an index answered it), read up to the end of the
    page only. ``count=False`` leaves ``count`` out of the meta (EMQX's fuzzy searches). Rows
    are returned as they are: ``page_response`` formats them. A filter whose matches are not
    known without looking at every row is ``scan_page``'s."""
    start = params.offset
    # islice takes indices up to sys.maxsize; no iterable has more rows than that, so a
    # larger page is simply past the end.
    stop = min(start + params.limit, sys.maxsize)
    if total is None:
        if not isinstance(rows, Sequence):
            raise TypeError("paginate: rows without a total must be a sequence (or scan_page)")
        total = len(rows)
    if start >= total:
        data = []
    elif isinstance(rows, Sequence):
        data = list(rows[start:stop])
    else:
        data = list(islice(rows, start, stop))
    meta: dict[str, Any] = {"page": params.page, "limit": params.limit}
    if count:
        meta["count"] = total
    meta["hasnext"] = start + len(data) < total
    return {"data": data, "meta": meta}


async def scan_page(rows: Iterable, params: PageParams, *, count: bool = True) -> dict:
    """The page of a filtered scan (``rows`` yields the matches), as ``paginate`` shapes it.
    With ``count`` every row is read to count the matches; without it (EMQX's fuzzy
    searches, whose meta has no ``count``) reading stops one row past the page. The scan
    turns the event loop every ``SLICE_SECONDS``, so that filtering 100,000 clients does not
    hold MQTT traffic up: build ``rows`` over a snapshot (``list(d.values())``, a fast copy),
    never over a live dict, which may change meanwhile."""
    start = params.offset
    data, n = await scan_slice(rows, start, min(start + params.limit, sys.maxsize), count=count)
    meta: dict[str, Any] = {"page": params.page, "limit": params.limit}
    if count:
        meta["count"] = n
    meta["hasnext"] = start + len(data) < n
    return {"data": data, "meta": meta}


async def scan_slice(rows: Iterable, start: int, stop: int, *,
                     count: bool = True) -> tuple[list, int]:
    """Rows ``start``..``stop`` of a filtered scan and the number of rows read (all of them
    with ``count``, else up to one past ``stop``), turning the loop as ``scan_page`` says (a
    cluster query pages each node with it)."""
    data: list = []
    n = 0
    clock = time.perf_counter
    deadline = clock() + SLICE_SECONDS
    for row in rows:
        if n >= stop and not count:
            n += 1  # one past the page: there is a next page
            break
        if n >= start and n < stop:
            data.append(row)
        n += 1
        if not n % CHECK_ROWS and clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + SLICE_SECONDS
    return data, n


def sliced_page(rows: list, total: int, params: PageParams) -> dict:
    """A page that a store already cut out (SQL ``LIMIT``/``OFFSET``), of ``total`` rows."""
    return {"data": rows, "meta": {"page": params.page, "limit": params.limit, "count": total,
                                   "hasnext": params.offset + len(rows) < total}}


async def page_response(result: dict, fmt: Callable[[Any], Any] | None = None) -> Response:
    """The JSON response of a page from ``paginate``/``sliced_page``, each row passed through
    ``fmt`` first. Rows are formatted and serialised one by one, with a turn of the event loop
    whenever ``SLICE_SECONDS`` have been spent; a large body is sent in those pieces (with
    a Content-Length, not chunked)."""
    rows = result["data"]
    pieces: list[bytes] = [b'{"data":[']
    done: list[bytes] = []  # rows serialised since the last turn of the loop
    dumps, opt = orjson.dumps, orjson.OPT_NON_STR_KEYS
    clock = time.perf_counter
    deadline = clock() + SLICE_SECONDS
    for i, row in enumerate(rows, 1):
        # one row at a time: a formatted row is garbage as soon as it is serialised, so the
        # collector's younger generations find (and promote) almost nothing alive
        done.append(dumps(row if fmt is None else fmt(row), option=opt))
        if not i % CHECK_ROWS and clock() >= deadline and i < len(rows):
            pieces.append(b",".join(done) + b",")
            done = []
            await asyncio.sleep(0)
            deadline = clock() + SLICE_SECONDS
    # meta by the standard library: `page` has no upper bound and orjson stops at 64 bits
    pieces.append(b",".join(done) + b'],"meta":'
                  + json.dumps(result["meta"], separators=(",", ":")).encode() + b"}")
    if len(pieces) == 2:
        return Response(pieces[0] + pieces[1], media_type="application/json")
    return StreamingResponse(_pieces(pieces), media_type="application/json",
                             headers={"content-length": str(sum(map(len, pieces)))})


async def _pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


def page_schema(item_schema: dict) -> dict:
    """OpenAPI schema of a paginated response, for ``responses={200: ...}`` documentation."""
    return {"type": "object", "properties": {
        "data": {"type": "array", "items": item_schema},
        "meta": {"type": "object", "properties": {
            "page": {"type": "integer"}, "limit": {"type": "integer"},
            "count": {"type": "integer"}, "hasnext": {"type": "boolean"}}}}}
