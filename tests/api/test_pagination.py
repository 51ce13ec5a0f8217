"""paginate slices what is indexed; scan_page filters in slices that let the loop run."""
from __future__ import annotations

import asyncio

import pytest

from emqpy.api import pagination
from emqpy.api.pagination import PageParams, paginate, scan_page


def params(page: int, limit: int) -> PageParams:
    return PageParams(page=page, limit=limit)


@pytest.mark.parametrize("count", [True, False])
@pytest.mark.parametrize("page,limit", [(1, 10), (2, 10), (10, 10), (11, 10), (1, 1000),
                                        (3, 7)])
def test_scan_page_answers_what_paginate_answers_for_the_same_rows(page, limit, count):
    rows = [i for i in range(100) if i % 3 == 0]  # 34 matches
    want = paginate(rows, params(page, limit), count=count)
    got = asyncio.run(scan_page((i for i in range(100) if i % 3 == 0), params(page, limit),
                                count=count))
    assert got == want


def test_paginate_wants_a_total_for_an_iterator():
    with pytest.raises(TypeError):
        paginate(iter(range(5)), params(1, 2))
    assert paginate(iter(range(5)), params(2, 2), 5)["data"] == [2, 3]


def test_scan_page_turns_the_loop_while_it_scans(monkeypatch):
    monkeypatch.setattr(pagination, "SLICE_SECONDS", 0.0)
    ticks = 0

    async def main():
        def tick():
            nonlocal ticks
            ticks += 1
            loop.call_soon(tick)

        loop = asyncio.get_running_loop()
        loop.call_soon(tick)
        page = await scan_page(iter(range(10_000)), params(1, 5))
        assert page["meta"] == {"page": 1, "limit": 5, "count": 10_000, "hasnext": True}

    asyncio.run(main())
    assert ticks >= 10_000 // pagination.CHECK_ROWS - 1
