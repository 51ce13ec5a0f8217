"""The rules API's OpenAPI document against EMQX 5.8.1's (the reference document): the same
operations, parameters, status codes and body fields."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emqpy.api import openapi
from emqpy.api.app import API_PREFIX, ApiContext, create_app

REFERENCE = Path("/work/shared/reference/emqx-5.8.1-openapi.json")
PATHS = ["/rules", "/rules/{id}", "/rules/{id}/metrics", "/rules/{id}/metrics/reset",
         "/rules/{id}/test", "/rule_test", "/rule_events", "/rule_engine",
         "/prometheus/data_integration"]


@pytest.fixture(scope="module")
def docs():
    if not REFERENCE.is_file():
        pytest.skip("the reference OpenAPI document is not on this machine")
    ours = openapi.build(create_app(ApiContext(broker=None, store=None)), API_PREFIX)
    return ours, json.loads(REFERENCE.read_text())


def _resolve(node, doc):
    while isinstance(node, dict) and "$ref" in node:
        section, name = node["$ref"].split("/")[-2:]
        node = doc["components"][section][name]
    return node


def _params(op, doc):
    return {(p["in"], p["name"]) for p in (_resolve(p, doc) for p in op.get("parameters", []))}


def _body_fields(op, doc):
    schema = _resolve(op["requestBody"]["content"]["application/json"]["schema"], doc)
    return set(schema.get("properties", {})), set(schema.get("required", []))


@pytest.mark.parametrize("path", PATHS)
def test_operations_match_the_reference(docs, path):
    ours, ref = docs
    for method, rop in ref["paths"][path].items():
        op = ours["paths"][path][method]
        assert set(rop["responses"]) <= set(op["responses"]), (method, path)
        assert _params(rop, ref) == _params(op, ours), (method, path)
        if "requestBody" in rop:
            r_fields, r_required = _body_fields(rop, ref)
            o_fields, o_required = _body_fields(op, ours)
            assert r_fields <= o_fields, (method, path, r_fields - o_fields)
            assert r_required == o_required, (method, path)
