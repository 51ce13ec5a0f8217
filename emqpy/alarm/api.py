"""REST API of alarms (EMQX's "Alarms" tag)."""
from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from emqpy.api.auth import authenticated
from emqpy.api.pagination import Page, page_response, paginate

router = APIRouter(tags=["Alarms"], dependencies=[Depends(authenticated)])


class AlarmOut(BaseModel):
    node: str = Field(description="The name of the node that triggered this alarm.",
                      examples=["emqx@127.0.0.1"])
    name: str = Field(description="The name of the alarm.",
                      examples=["high_system_memory_usage"])
    message: str = Field(description="Alarm message, which describes the alarm content in a "
                                     "human-readable format.",
                         examples=["System memory usage is higher than 70%"])
    details: dict = Field(description="Alarm details, provides more alarm information, mainly "
                                      "for program processing.",
                          examples=[{"high_watermark": 70}])
    duration: int = Field(description="Indicates how long the alarm has been active in "
                                      "milliseconds.", examples=[297056])
    activate_at: str = Field(description="Alarm start time, using rfc3339 standard time format.",
                             examples=["2021-10-25T11:52:52.548+08:00"])
    deactivate_at: Optional[str] = Field(None, description="Alarm end time, using rfc3339 "
                                                           "standard time format.",
                                         examples=["2021-10-31T10:52:52.548+08:00"])


class AlarmMeta(BaseModel):
    page: int
    limit: int
    count: int
    hasnext: bool


class AlarmPage(BaseModel):
    data: list[AlarmOut]
    meta: AlarmMeta


@router.get("/alarms", response_model=AlarmPage, response_model_exclude_none=True,
            description="List currently activated alarms or historical alarms, determined by "
                        "query parameters.")
async def list_alarms(
    request: Request, page: Page,
    activated: Annotated[Optional[bool], Query(
        description="It is used to specify the alarm type of the query.<br/>When true, it "
                    "returns the currently activated alarm,<br/>and when it is false, it "
                    "returns the historical alarm.<br/>The default is true.")] = None,
):
    broker = request.app.state.ctx.broker
    # EMQX 5.8.1 lists the active alarms when `activated` is left out.
    alarms = broker.alarms.list(True if activated is None else activated)
    node = broker.node_name
    # response_model documents the shape; the rows already have it (no None fields)
    return await page_response(paginate(alarms, page), lambda a: a.format(node))


@router.delete("/alarms", status_code=204, response_class=Response,
               description="Remove all historical alarms.",
               responses={204: {"description": "Historical alarms have been cleared "
                                               "successfully."}})
async def delete_alarms(request: Request):
    request.app.state.ctx.broker.alarms.delete_deactivated()
    return Response(status_code=204)
