"""The OpenAPI 3.0 document (``/api-docs/swagger.json``), generated from the routes.

FastAPI emits JSON Schema 2020-12 flavoured schemas (OpenAPI 3.1 style); EMQX publishes 3.0,
so we down-convert them, replace FastAPI's 422 with EMQX's 400 BAD_REQUEST, declare 415
UNSUPPORTED_MEDIA_TYPE for every JSON request body, and add ``security`` plus the 401 codes of
each operation from its auth dependency.
"""
from __future__ import annotations

from typing import Any

from fastapi.openapi.utils import get_openapi

from emqpy.api import auth
from emqpy.api.errors import error_responses

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Key of ``openapi_extra`` that carries component schemas an operation refers to (see one_of).
_COMPONENTS = "x-emqpy-components"


def model_schema(model) -> dict:
    """A pydantic model's JSON schema with its nested models written in place (no $defs)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node):
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
        return {k: walk(v) for k, v in node.items()}
    return walk(schema)


def one_of(schemas: dict[str, dict], examples: dict | None = None) -> dict:
    """``openapi_extra`` for a JSON request body that is one of several object types, typed the
    way EMQX types them: a ``oneOf`` of references to one component schema per type."""
    content: dict[str, Any] = {"schema": {"oneOf": [{"$ref": f"#/components/schemas/{name}"}
                                                   for name in schemas]}}
    if examples:
        content["examples"] = examples
    return {"requestBody": {"required": True, "content": {"application/json": content}},
            _COMPONENTS: schemas}


def _declare(responses: dict, status: int, code: str) -> None:
    """Add the error `code` to the `status` response, keeping the codes already declared."""
    resp = responses.get(str(status))
    schema = (((resp or {}).get("content") or {}).get("application/json") or {}).get("schema")
    enum = ((schema or {}).get("properties") or {}).get("code", {}).get("enum")
    if enum is None:
        responses[str(status)] = error_responses({status: [code]})[status]
    elif code not in enum:
        enum.append(code)
        resp["description"] = ", ".join(enum)


def _to_30(node: Any) -> Any:
    """Down-convert a JSON Schema 2020-12 fragment to the OpenAPI 3.0 schema dialect."""
    if isinstance(node, list):
        return [_to_30(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _to_30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        alts = node.get(key)
        if isinstance(alts, list) and {"type": "null"} in alts:
            rest = [a for a in alts if a != {"type": "null"}]
            del node[key]
            node["nullable"] = True
            if len(rest) == 1:
                inner = rest[0]
                if "$ref" in inner:
                    node["allOf"] = [inner]
                else:
                    node.update({k: v for k, v in inner.items() if k not in node})
            else:
                node[key] = rest
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "examples" in node and isinstance(node["examples"], list):
        examples = node.pop("examples")
        if examples and "example" not in node:
            node["example"] = examples[0]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), (int, float)) and not isinstance(node[bound], bool):
            node[flag] = node.pop(bound)
            node[bound] = True
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        if len(types) < len(node["type"]):
            node["nullable"] = True
        node["type"] = types[0] if len(types) == 1 else "string"
    if "$ref" in node and len(node) > 1:
        ref = node.pop("$ref")
        node["allOf"] = [{"$ref": ref}]
    for drop in ("$schema", "contentMediaType", "contentEncoding", "$defs"):
        node.pop(drop, None)
    return node


def _fix_parameter(param: dict) -> dict:
    schema = param.get("schema", {})
    if "examples" in param and isinstance(param["examples"], dict):
        pass  # named examples are valid in 3.0
    param["schema"] = _to_30(schema)
    if "example" not in param and "example" in param["schema"]:
        param["example"] = param["schema"]["example"]
    return param


def build(app, prefix: str) -> dict:
    if getattr(app.state, "openapi_doc", None) is not None:
        return app.state.openapi_doc
    doc = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                      description="The emqpy management API, compatible with EMQX 5's "
                                  "/api/v5. Authenticate with Basic auth (API key and secret) "
                                  "or a bearer token from POST /login.",
                      routes=app.routes)
    paths = {}
    components: dict[str, dict] = {}
    for path, ops in doc.get("paths", {}).items():
        if not path.startswith(prefix + "/"):
            continue
        for method, op in ops.items():
            if method not in _METHODS:
                continue
            components.update(op.pop(_COMPONENTS, None) or {})
            body = (op.get("requestBody") or {}).get("content") or {}
            if "application/json" in body:
                body["application/json"]["schema"].pop("title", None)  # FastAPI's "Body"
            responses = op.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                _declare(responses, 400, "BAD_REQUEST")
            if "application/json" in body:
                _declare(responses, 415, "UNSUPPORTED_MEDIA_TYPE")
            if op.get("security"):
                if "401" not in responses:
                    responses.update({str(k): v for k, v in auth.AUTH_RESPONSES.items()})
            else:
                op["security"] = []
            for p in op.get("parameters", []):
                _fix_parameter(p)
            op.pop("operationId", None)  # FastAPI's generated ids are noise in Swagger UI
        paths[path[len(prefix):]] = ops
    doc["paths"] = paths
    doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
    doc = _to_30(doc)
    comps = doc["components"]
    schemas = comps.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if not schemas:
        comps.pop("schemas", None)
    doc["servers"] = [{"url": prefix}]
    doc["openapi"] = app.openapi_version
    app.state.openapi_doc = doc
    return doc
