"""REST API of the rule engine (EMQX's "Rules" tag, emqx_rule_engine_api): rules, their
metrics, rule tests, the event catalogue and the engine's settings."""
from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.openapi import model_schema
from emqpy.api.pagination import Page, page_response, paginate
from emqpy.mqtt.topic import matches
from emqpy.rule_engine import catalog, service, tester

router = APIRouter(tags=["Rules"], dependencies=[Depends(authenticated)])


# -- models (the OpenAPI document; bodies are checked by the config model) ----------------------

class RepublishArgs(BaseModel):
    topic: str = Field(description="The target topic of message to be re-published.<br/>"
                                   "Template with variables is allowed.", examples=["a/1"])
    qos: Union[int, str] = Field("${qos}", description="The qos of the message to be "
                                 "re-published. Template with variables is allowed.")
    retain: Union[bool, str] = Field("${retain}", description="The 'retain' flag of the "
                                     "message to be re-published.")
    payload: str = Field("${payload}", description="The payload of the message to be "
                                                   "re-published.")
    mqtt_properties: dict[str, str] = Field({}, description="MQTT 5 PUBLISH properties "
                                            "(Payload-Format-Indicator, Message-Expiry-Interval, "
                                            "Content-Type, Response-Topic, Correlation-Data), "
                                            "each a template.")
    user_properties: str = Field("${user_properties}", description="From which variable "
                                 "the User-Property pairs are taken (a map).")
    direct_dispatch: Union[bool, str] = Field(False, description="Dispatch to subscribers "
                                              "directly, without a new message publish event.")


class RepublishAction(BaseModel):
    function: str = Field(description="republish", examples=["republish"])
    args: RepublishArgs


class FunctionAction(BaseModel):
    function: str = Field(description="console, or a user provided 'module:function'",
                          examples=["console"])
    args: dict[str, Any] = {}


Action = Union[RepublishAction, FunctionAction, str]


class RuleCreation(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Optional[str] = Field(None, description="The ID of the rule (POST: generated when "
                                                "left out)")
    name: str = Field("", description="The name of the rule", examples=["foo"])
    sql: str = Field(description="SQL query to transform the messages.", examples=[
        'SELECT * FROM "test/topic" WHERE payload.x = 1'])
    actions: list[Action] = Field([], description="A list of actions of the rule.")
    enable: bool = Field(True, description="Enable or disable the rule")
    description: str = Field("", description="The description of the rule",
                             examples=["Some description"])
    metadata: Optional[dict[str, Any]] = Field(None, description="Rule metadata, do not "
                                                                 "change manually")


class RuleInfo(BaseModel):
    id: str = Field(description="The ID of the rule", examples=["293fb66f"])
    name: str = ""
    sql: str
    actions: list[Action] = []
    enable: bool = True
    description: str = ""
    created_at: str = Field(description="The created time of the rule",
                            examples=["2021-12-01T15:00:43.153+08:00"])
    from_: list[str] = Field(alias="from", description="The topics of the rule")


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    matched: int = Field(ge=0, description="How many times the FROM clause of the SQL is "
                                           "matched.")
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class NodeMetrics(BaseModel):
    node: str
    metrics: Metrics


class RuleMetricsView(BaseModel):
    id: str
    metrics: Metrics
    node_metrics: list[NodeMetrics]


class RuleTest(BaseModel):
    context: dict[str, Any] = Field({}, description="The context of the event for testing")
    sql: str = Field(description="The SQL of the rule for testing")


class RuleApplyTest(BaseModel):
    context: dict[str, Any] = Field({}, description="The context of the event for testing")
    stop_action_after_template_rendering: bool = Field(
        True, description="Set this to true if the action should be stopped after its "
                          "template has been rendered (default is true).")


class RuleEngineSettings(BaseModel):
    ignore_sys_message: bool = Field(True, description="When set to 'true' (default), "
                                     "rule-engine will ignore messages published to $SYS "
                                     "topics.")
    jq_function_default_timeout: Union[str, int] = Field(
        "10s", description="Default timeout for the `jq` rule engine function",
        examples=["32s"])


class RuleEvent(BaseModel):
    event: str
    title: dict[str, str]
    description: dict[str, str]
    columns: list[str]
    test_columns: dict[str, Any]
    sql_example: str


def _body(model) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model_schema(model)}}}}


_400 = error_responses({400: ["BAD_REQUEST"]})
_404 = error_responses({404: ["NOT_FOUND"]})
_503 = error_responses({503: ["SERVICE_UNAVAILABLE"]})
_TEST = error_responses({400: ["BAD_REQUEST"], 412: ["NOT_MATCH"]})


def _broker(request: Request):
    return request.app.state.ctx.broker


def _engine(request: Request):
    try:
        return service.engine(_broker(request))
    except service.RuleChangeError as e:
        raise ApiError(503, "SERVICE_UNAVAILABLE", e.message) from None


def _rule(request: Request, rule_id: str):
    rule = _engine(request).get(rule_id)
    if rule is None:
        raise ApiError(404, "NOT_FOUND", "Rule Id Not Found")
    return rule


def _change_error(e: service.RuleChangeError) -> ApiError:
    if e.status == 503:
        return ApiError(503, "SERVICE_UNAVAILABLE", e.message)
    return ApiError(400, "BAD_REQUEST", e.message)


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "body: a JSON object is expected")
    return body


# -- rules ----------------------------------------------------------------------------------------

@router.get("/rules", summary="List rules", description="List all rules",
            response_model=None, responses={200: {"description": "Rules", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "data": {"type": "array", "items": model_schema(RuleInfo)},
                    "meta": {"type": "object"}}}}}}, **_400, **_503})
async def list_rules(
    request: Request, page: Page,
    enable: Annotated[Optional[bool], Query(description="Filter enable/disable rules")] = None,
    from_: Annotated[Optional[str], Query(alias="from", description="Filter rules by "
                                          "from(topic), exact match")] = None,
    like_id: Annotated[Optional[str], Query(description="Filter rules by id, Substring "
                                            "matching")] = None,
    like_from: Annotated[Optional[str], Query(description="Filter rules by from(topic), "
                                              "Substring matching")] = None,
    like_description: Annotated[Optional[str], Query(description="Filter rules by "
                                                     "description, Substring matching")] = None,
    match_from: Annotated[Optional[str], Query(description="Filter rules by from(topic), "
                                               "Mqtt topic matching")] = None,
    action: Annotated[Optional[list[str]], Query(description="Filters rules that contain any "
                                                 "of the given action id(s).")] = None,
    source: Annotated[Optional[list[str]], Query(description="Filters rules that contain any "
                                                 "of the given source id(s).")] = None,
):
    rules = _engine(request).ordered()
    if enable is not None:
        rules = [r for r in rules if r.enable == enable]
    fuzzy = any(v is not None for v in (from_, like_id, like_from, like_description,
                                        match_from, action, source))
    if fuzzy:
        rules = [r for r in rules if _fuzzy_match(r, from_, like_id, like_from,
                                                  like_description, match_from, action,
                                                  source)]
    # As EMQX: no total for the fuzzy filters.
    return await page_response(paginate(rules, page, count=not fuzzy), lambda r: r.info())


def _fuzzy_match(rule, from_, like_id, like_from, like_description, match_from, action,
                 source) -> bool:
    froms = rule.froms
    if like_id is not None and like_id not in rule.id:
        return False
    if like_description is not None and like_description not in rule.conf.description:
        return False
    if from_ is not None and from_ not in froms:
        return False
    if match_from is not None and not any(matches(match_from, f) for f in froms):
        return False
    if like_from is not None and not any(like_from in f for f in froms):
        return False
    if action is not None:
        names = {a.describe() for a in rule.actions if isinstance(a.describe(), str)}
        if not names & {_action_id(a) for a in action}:
            return False
    if source is not None:
        hooks = {f"$bridges/{s}" for s in source} | {f"$sources/{s}" for s in source}
        if not hooks & set(froms):
            return False
    return True


def _action_id(ref: str) -> str:
    ref = ref[len("bridge:"):] if ref.startswith("bridge:") else ref
    return "http:" + ref[len("webhook:"):] if ref.startswith("webhook:") else ref


@router.post("/rules", status_code=201, summary="Create a rule",
             description="Create a new rule using given Id",
             responses={201: {"description": "The rule", "content": {"application/json": {
                 "schema": model_schema(RuleInfo)}}}, **_400, **_503},
             openapi_extra=_body(RuleCreation), response_model=None)
async def create_rule(request: Request, body: Annotated[Any, Body()]):
    try:
        info = await service.create(_broker(request), _object(body))
    except service.RuleChangeError as e:
        raise _change_error(e) from None
    return JSONResponse(info, status_code=201)


@router.get("/rules/{id}", summary="Get rule", description="Get a rule by given Id",
            response_model=None, responses={200: {"description": "The rule", "content": {
                "application/json": {"schema": model_schema(RuleInfo)}}}, **_404, **_503})
async def get_rule(request: Request, id: str):
    return _rule(request, id).info()


@router.put("/rules/{id}", summary="Update rule",
            description="Update a rule by given Id to all nodes in the cluster",
            response_model=None, openapi_extra=_body(RuleCreation),
            responses={200: {"description": "The rule", "content": {"application/json": {
                "schema": model_schema(RuleInfo)}}}, **_400, **_503})
async def put_rule(request: Request, id: str, body: Annotated[Any, Body()]):
    try:
        return await service.update(_broker(request), id, _object(body))
    except service.RuleChangeError as e:
        raise _change_error(e) from None


@router.delete("/rules/{id}", status_code=204, summary="Delete rule",
               description="Delete a rule by given Id from all nodes in the cluster",
               response_class=Response, responses={**_404, **_503})
async def delete_rule(request: Request, id: str):
    _engine(request)
    try:
        found = await service.delete(_broker(request), id)
    except service.RuleChangeError as e:
        raise _change_error(e) from None
    if not found:
        raise ApiError(404, "NOT_FOUND", "Rule Id Not Found")
    return Response(status_code=204)


@router.get("/rules/{id}/metrics", summary="Get rule metrics",
            description="Get a rule's metrics by given Id", response_model=RuleMetricsView,
            responses={**_404, **_503})
async def get_metrics(request: Request, id: str):
    rule = _rule(request, id)
    m = rule.metrics.as_dict()
    return {"id": id, "metrics": m,
            "node_metrics": [{"node": _broker(request).node_name, "metrics": dict(m)}]}


@router.put("/rules/{id}/metrics/reset", status_code=204, summary="Reset rule metrics",
            description="Reset a rule metrics", response_class=Response,
            responses={**_404, **_503})
async def reset_metrics(request: Request, id: str):
    _rule(request, id).metrics.reset()
    return Response(status_code=204)


# -- tests ----------------------------------------------------------------------------------------

@router.post("/rule_test", summary="Test a rule", description="Test a rule",
             response_model=None, openapi_extra=_body(RuleTest),
             responses={200: {"description": "Rule Test Pass"}, **_TEST, **_503})
async def rule_test(request: Request, body: Annotated[Any, Body()]):
    body = _object(body)
    sql = body.get("sql")
    if not isinstance(sql, str):
        raise ApiError(400, "BAD_REQUEST", "Bad Arguments: sql: required field missing")
    try:
        return tester.test_sql(_engine(request), sql, body.get("context"))
    except tester.TestError as e:
        if e.status == 412:
            raise ApiError(412, "NOT_MATCH", e.message) from None
        raise ApiError(400, "BAD_REQUEST", e.message) from None


def _test_error(e: tester.TestError) -> ApiError:
    if e.status == 412:
        return ApiError(412, "NOT_MATCH", e.message)
    if e.status == 404:
        return ApiError(404, "RULE_NOT_FOUND", e.message)
    return ApiError(400, "BAD_REQUEST", e.message)


@router.post("/rules/{id}/test", summary="Apply a rule for testing",
             description="Apply a rule with the given message and environment",
             response_model=None, openapi_extra=_body(RuleApplyTest),
             responses={200: {"description": "Rule Applied"}, **_TEST,
                        **error_responses({404: ["RULE_NOT_FOUND"]}), **_503})
async def rule_apply_test(request: Request, id: str, body: Annotated[Any, Body()]):
    body = _object(body)
    stop = body.get("stop_action_after_template_rendering", True)
    if not isinstance(stop, bool):
        raise ApiError(400, "BAD_REQUEST", "Bad Arguments: "
                                           "stop_action_after_template_rendering: a boolean")
    try:
        return tester.apply_rule(_engine(request), id, body.get("context"), stop)
    except tester.TestError as e:
        raise _test_error(e) from None


# -- events and settings --------------------------------------------------------------------------

@router.get("/rule_events", summary="List rule events",
            description="List all events can be used in rules",
            response_model=list[RuleEvent])
async def rule_events(request: Request):
    return catalog.event_info(_broker(request).node_name)


_SETTINGS_200 = {200: {"description": "The settings", "content": {"application/json": {
    "schema": model_schema(RuleEngineSettings)}}}}


@router.get("/rule_engine", description="Get rule engine configuration.", response_model=None,
            responses=_SETTINGS_200)
async def get_settings(request: Request):
    return service.settings_view(_broker(request).config)


@router.put("/rule_engine", description="Update rule engine configuration.",
            response_model=None, openapi_extra=_body(RuleEngineSettings),
            responses={**_SETTINGS_200, **_400})
async def put_settings(request: Request, body: Annotated[Any, Body()]):
    broker = _broker(request)
    try:
        await service.update_settings(broker, body)
    except service.RuleChangeError as e:
        raise ApiError(400, "BAD_REQUEST", e.message) from None
    return service.settings_view(broker.config)

