"""The one pagination helper every list endpoint uses (EMQX's ``page``/``limit`` + ``meta``).

    from emqpy.api.pagination import Page, paginate

    @router.get("/banned")
    async def list_banned(page: Page):
        return paginate(rows, page)           # rows: a list, or (rows_on_page, total)

Response: ``{"data": [...], "meta": {"page", "limit", "count", "hasnext"}}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Sequence

from fastapi import Depends, Query

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


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
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT,
                                description="Results per page (max 1000).",
                                examples=[50])] = DEFAULT_LIMIT,
) -> PageParams:
    return PageParams(page, limit)


Page = Annotated[PageParams, Depends(_page_params)]


def paginate(items: Sequence[Any] | tuple[Sequence[Any], int], params: PageParams) -> dict:
    """Slice a full list, or wrap an already-sliced page given as ``(page_rows, total)``."""
    if isinstance(items, tuple):
        rows, total = items
        rows = list(rows)
    else:
        total = len(items)
        rows = list(items[params.offset:params.offset + params.limit])
    return {"data": rows,
            "meta": {"page": params.page, "limit": params.limit, "count": total,
                     "hasnext": params.offset + len(rows) < total}}


def page_schema(item_schema: dict) -> dict:
    """OpenAPI schema of a paginated response, for ``responses={200: ...}`` documentation."""
    return {"type": "object", "properties": {
        "data": {"type": "array", "items": item_schema},
        "meta": {"type": "object", "properties": {
            "page": {"type": "integer"}, "limit": {"type": "integer"},
            "count": {"type": "integer"}, "hasnext": {"type": "boolean"}}}}}
