"""GET /schemas/{name}: the dashboard's form schemas, without authentication, as EMQX's
emqx_dashboard_schema_api shapes them; every reference resolves inside the document."""
from __future__ import annotations

import httpx
import pytest

from support.node import assert_error


def _refs(node, out):
    if isinstance(node, dict):
        if "$ref" in node:
            out.add(node["$ref"])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)
    return out


@pytest.mark.parametrize("name,title,path", [
    ("hotconf", "Hot Conf Schema", "/configs/global_zone"),
    ("actions", "Actions and Sources Schema", "/actions"),
    ("connectors", "Connectors Schema", "/connectors"),
])
def test_schema_documents(api, name, title, path):
    r = httpx.get(api.api_url + f"/schemas/{name}")  # no credentials
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["info"] == {"title": title, "version": "0.2.0"}
    assert "get" in doc["paths"][path]
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc, set()):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    others = {p for p in doc["paths"] if not p.startswith(path.rsplit("/", 1)[0] or path)}
    assert not {p for p in others if p.startswith(("/clients", "/rules", "/authentication"))}


def test_connectors_schema_describes_the_http_connector(api):
    doc = httpx.get(api.api_url + "/schemas/connectors").json()
    text = str(doc["components"]["schemas"]) + str(doc["paths"])
    assert "url" in text and "pool_size" in text


def test_bridges_covers_the_v1_api_and_unknown_names_are_refused(api):
    doc = httpx.get(api.api_url + "/schemas/bridges").json()
    assert "/bridges" in doc["paths"] and doc["info"]["title"] == "Data Bridge Schema"
    assert all(p.startswith(("/bridges", "/nodes/{node}/bridges")) for p in doc["paths"])
    assert_error(httpx.get(api.api_url + "/schemas/nope"), 400, "BAD_REQUEST")
