"""GET /schemas/{name} (EMQX's emqx_dashboard_schema_api): the JSON schemas the dashboard
builds its config forms from, cut out of this node's own OpenAPI document: per API path and
method the schema of the 200 answer (or, where that is documented as a bare object, of the JSON
body the operation takes), and the components they reference. No authentication,
as in EMQX."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request

router = APIRouter(tags=["Dashboard"])

SCHEMA_VERSION = "0.2.0"
# name -> (title, the API paths it covers: EMQX's modules emqx_mgmt_api_configs,
# emqx_bridge_api (the v1 bridges), emqx_bridge_v2_api, emqx_connector_api)
SCHEMAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "hotconf": ("Hot Conf Schema", ("/configs",)),
    "bridges": ("Data Bridge Schema", ("/bridges",)),
    "actions": ("Actions and Sources Schema", ("/actions", "/action_types", "/sources",
                                               "/source_types")),
    "connectors": ("Connectors Schema", ("/connectors",)),
}


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def _json_schema(part: dict | None) -> dict | None:
    return (((part or {}).get("content") or {}).get("application/json") or {}).get("schema")


def _generic(schema: dict | None) -> bool:
    """No schema, or one that says no more than "an object" / "a list of objects"."""
    if schema is None:
        return True
    if schema.get("type") == "array":
        schema = schema.get("items") or {}
    return not ({"properties", "$ref", "oneOf", "anyOf", "allOf"} & schema.keys())


def build(doc: dict, name: str) -> dict:
    title, prefixes = SCHEMAS[name]
    paths: dict[str, dict] = {}
    for path, ops in doc.get("paths", {}).items():
        if not any(path == p or path.startswith((p + "/", p + "_")) for p in prefixes):
            continue
        answers = {}
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            schema = _json_schema((op.get("responses") or {}).get("200"))
            if _generic(schema):  # an answer documented loosely: the body it takes tells more
                schema = _json_schema(op.get("requestBody")) or schema
            if schema is not None:
                answers[method] = schema
        if answers:
            paths[path] = answers
    all_components = doc.get("components", {}).get("schemas", {})
    wanted: set[str] = set()
    _refs(paths, wanted)
    done: set[str] = set()
    while wanted - done:  # components reference further components
        for c in sorted(wanted - done):
            done.add(c)
            _refs(all_components.get(c), wanted)
    return {"info": {"title": title, "version": SCHEMA_VERSION}, "paths": paths,
            "components": {"schemas": {c: all_components[c] for c in sorted(done)
                                       if c in all_components}}}


@router.get("/schemas/{name}", summary="Get the schema JSON of the specified name",
            description="Get the schema JSON of the specified name. NOTE: only intended for "
                        "EMQX Dashboard.",
            responses={200: {"description": "The JSON schema of the specified name.",
                             "content": {"application/json": {"schema": {"type": "object"}}}}})
async def get_schema(request: Request,
                     name: Literal["hotconf", "bridges", "actions", "connectors"]):
    return build(request.app.openapi(), name)
