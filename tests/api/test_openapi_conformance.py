"""The OpenAPI document against the code and the running server.

- Every error code a handler can raise is declared for its operation: the handlers (and the
  functions they reach) are read with `ast`, every `SomeError(4xx, "CODE", ...)` found is looked
  up in the operation's `responses`.
- Every JSON request body declares 415 UNSUPPORTED_MEDIA_TYPE; the authenticator and
  authorization-source bodies are EMQX's `oneOf` of the concrete types.
- schemathesis calls every GET of a started broker with generated parameters: no 5xx, and
  status codes, content types and bodies as documented.
"""
from __future__ import annotations

import ast
import inspect
import os
import textwrap
import types

import jsonschema
import pytest
import schemathesis
from schemathesis import checks
from fastapi import routing
from hypothesis import HealthCheck, settings

from emqpy.api import openapi
from emqpy.api.app import API_PREFIX, ApiContext, create_app


@pytest.fixture(scope="module")
def app_and_doc():
    app = create_app(ApiContext(broker=None, store=None))
    return app, openapi.build(app, API_PREFIX)


# -- error codes: raised vs declared --------------------------------------------------------

def _resolve(fn, name: str):
    """What `name` means inside `fn`: a global of its module or a variable it closes over."""
    if name in fn.__globals__:
        return fn.__globals__[name]
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        if var == name:
            try:
                return cell.cell_contents
            except ValueError:  # not bound yet
                return None
    return None


def _ours(obj) -> bool:
    return isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith("emqpy.")


def _source_tree(fn):
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None


def _status_and_code(call: ast.Call):
    """(status, code node) of a call written `X(4xx or 5xx, CODE, ...)`."""
    a = call.args
    if len(a) >= 2 and isinstance(a[0], ast.Constant) and type(a[0].value) is int \
            and 400 <= a[0].value < 600:
        return a[0].value, a[1]
    return None


def _is_code(value) -> bool:
    return isinstance(value, str) and value.isupper() and value.replace("_", "").isalnum()


def _error_factory(fn):
    """For a helper that builds an error from its argument, e.g. `_bad(e, code="BAD_REQUEST")`
    returning `ApiError(400, code, ...)`: (status, parameter, its index, its default)."""
    tree = _source_tree(fn)
    if tree is None:
        return None
    fdef = tree.body[0]
    params = [p.arg for p in fdef.args.args]
    defaults = dict(zip(params[len(params) - len(fdef.args.defaults):], fdef.args.defaults))
    for node in ast.walk(fdef):
        if isinstance(node, ast.Call):
            found = _status_and_code(node)
            if found and isinstance(found[1], ast.Name) and found[1].id in params:
                name = found[1].id
                default = defaults.get(name)
                return (found[0], name, params.index(name),
                        default.value if isinstance(default, ast.Constant) else None)
    return None


def raised_codes(fn, seen: set | None = None) -> set[tuple[int, str]]:
    """(status, code) pairs `fn` and the emqpy functions it names can raise or return."""
    seen = set() if seen is None else seen
    fn = inspect.unwrap(fn)
    if not _ours(fn) or fn in seen:
        return set()
    seen.add(fn)
    tree = _source_tree(fn)
    if tree is None:
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found = _status_and_code(node)
            if found and isinstance(found[1], ast.Constant) and _is_code(found[1].value):
                out.add((found[0], found[1].value))
            callee = _resolve(fn, node.func.id) if isinstance(node.func, ast.Name) else None
            factory = _error_factory(callee) if _ours(callee) else None
            if factory:
                status, param, index, default = factory
                given = node.args[index] if index < len(node.args) else next(
                    (k.value for k in node.keywords if k.arg == param), None)
                code = given.value if isinstance(given, ast.Constant) else default
                if _is_code(code):
                    out.add((status, code))
        target = None
        if isinstance(node, ast.Name):
            target = _resolve(fn, node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = _resolve(fn, node.value.id)
            if isinstance(module, types.ModuleType):
                target = getattr(module, node.attr, None)
        if _ours(target):
            out |= raised_codes(target, seen)
    return out


def declared_codes(op: dict) -> set[tuple[int, str]]:
    out = set()
    for status, resp in op["responses"].items():
        schema = ((resp.get("content") or {}).get("application/json") or {}).get("schema") or {}
        for code in schema.get("properties", {}).get("code", {}).get("enum") or []:
            out.add((int(status), code))
    return out


# A helper that raises only for some arguments, never the ones these operations pass.
NOT_REACHABLE = {
    ("GET", "/nodes"): {(404, "NOT_FOUND")},  # _broker(request): no node name, no 404
    ("GET", "/cluster"): {(404, "NOT_FOUND")},
    ("GET", "/monitor"): {(404, "NOT_FOUND")},  # _resolve(request, "all") never 404s
    ("GET", "/monitor_current"): {(404, "NOT_FOUND")},
}


def test_every_raised_error_code_is_declared(app_and_doc):
    app, doc = app_and_doc
    missing, checked = {}, 0
    for ctx in routing.iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, routing.APIRoute) or not route.include_in_schema or \
                not ctx.path_format.startswith(API_PREFIX + "/"):
            continue
        path = ctx.path_format[len(API_PREFIX):]
        codes = set()
        for fn in [ctx.endpoint] + [d.call for d in route.dependant.dependencies]:
            codes |= raised_codes(fn)
        for method in ctx.methods:
            checked += 1
            gap = codes - declared_codes(doc["paths"][path][method.lower()]) - \
                NOT_REACHABLE.get((method, path), set())
            if gap:
                missing[f"{method} {path}"] = sorted(gap)
    assert checked > 100
    assert not missing, missing


def test_the_analysis_sees_codes_through_helpers(app_and_doc):
    # It must follow helpers (listeners' _lookup) and error factories (configs' _bad),
    # or the test above could pass by seeing nothing.
    from emqpy.mgmt import configs_api, listeners_api
    assert (400, "BAD_LISTENER_ID") in raised_codes(listeners_api.get_listener)
    assert (404, "BAD_LISTENER_ID") in raised_codes(listeners_api.get_listener)
    assert (400, "UPDATE_FAILED") in raised_codes(configs_api.put_configs)
    assert (400, "BAD_REQUEST") in raised_codes(configs_api.put_global_zone)


def test_json_request_bodies_declare_415(app_and_doc):
    _, doc = app_and_doc
    bodies = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "application/json" in (op.get("requestBody") or {}).get("content", {}):
                bodies += 1
                assert (415, "UNSUPPORTED_MEDIA_TYPE") in declared_codes(op), (method, path)
    assert bodies > 20


def test_validation_400_merges_with_declared_codes(app_and_doc):
    # PUT /configs declares 400 UPDATE_FAILED; its query parameters are validated too.
    _, doc = app_and_doc
    assert {(400, "UPDATE_FAILED"), (400, "BAD_REQUEST")} <= declared_codes(
        doc["paths"]["/configs"]["put"])


# EMQX's own request examples (its swagger.json), for the types emqpy supports.
AUTHN_BODIES = [
    {"mechanism": "jwt", "secret": "mysecret", "algorithm": "hmac-based",
     "secret_base64_encoded": False, "use_jwks": False,
     "verify_claims": {"username": "${username}"}},
    {"mechanism": "password_based", "backend": "built_in_database",
     "password_hash_algorithm": {"name": "sha256", "salt_position": "suffix"},
     "user_id_type": "username"},
    {"mechanism": "password_based", "backend": "http", "method": "post",
     "url": "http://127.0.0.1:18083", "headers": {"content-type": "application/json"},
     "body": {"password": "${password}", "username": "${username}"}, "ssl": {"enable": False},
     "connect_timeout": "5s", "request_timeout": "5s", "pool_size": 8,
     "enable_pipelining": 100},
    {"mechanism": "password_based", "backend": "redis", "redis_type": "single",
     "server": "127.0.0.1:6379", "database": 0, "cmd": "HMGET ${username} password_hash salt",
     "password_hash_algorithm": {"name": "sha256", "salt_position": "suffix"}},
    {"mechanism": "scram", "backend": "built_in_database", "algorithm": "sha512",
     "iteration_count": 4096},
]
AUTHZ_BODIES = [
    {"type": "file", "enable": True, "rules": '{allow, all, subscribe, ["open/#"]}.'},
    {"type": "built_in_database", "enable": True, "max_rules": 100},
    {"type": "http", "method": "get", "url": "http://127.0.0.1:8080/authz",
     "headers": {"accept": "application/json"}, "request_timeout": "30s"},
    {"type": "redis", "redis_type": "single", "server": "127.0.0.1:6379",
     "cmd": "HGETALL mqtt_user:${username}"},
]


@pytest.mark.parametrize("path, method, bodies", [
    ("/authentication", "post", AUTHN_BODIES), ("/authentication/{id}", "put", AUTHN_BODIES),
    ("/authorization/sources", "post", AUTHZ_BODIES),
    ("/authorization/sources/{type}", "put", AUTHZ_BODIES)])
def test_polymorphic_bodies_are_one_of_the_concrete_types(app_and_doc, path, method, bodies):
    _, doc = app_and_doc
    schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    refs = [alt["$ref"] for alt in schema["oneOf"]]
    assert len(refs) >= 5 and all(r.startswith("#/components/schemas/") for r in refs)
    components = doc["components"]["schemas"]
    for ref in refs:
        assert components[ref.rsplit("/", 1)[1]]["type"] == "object"
    whole = {**schema, "components": doc["components"]}
    for body in bodies:  # each matches exactly one alternative
        jsonschema.validate(body, whole, cls=jsonschema.Draft7Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"mechanism": "password_based", "backend": "nosuch"} if
                            "authentication" in path else {"type": "nosuch"}, whole,
                            cls=jsonschema.Draft7Validator)


# -- schemathesis on the GETs of a running broker -------------------------------------------

MAX_EXAMPLES = int(os.environ.get("EMQPY_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.unsupported_method]


@pytest.fixture(scope="module")
def live_schema(api):
    return schemathesis.openapi.from_url(api.url("/api-docs/swagger.json"))


# Only what changes nothing; not the test-only probe routes (tests/support/probe_api.py).
schema = schemathesis.pytest.from_fixture("live_schema").include(method="GET").exclude(
    path_regex="^/probe/")


@pytest.mark.timeout(600)  # one test item for every GET; about 20 s with 25 examples each
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_gets_conform_to_the_document(case):
    # What the document promises about answers, and that a method the path lacks answers 405
    # with an Allow header. Not run: positive_data_acceptance (a request the schema allows may
    # still be refused with a documented 400, as in EMQX).
    response = case.call(auth=("admin", "public"), timeout=30)
    case.validate_response(response, checks=CHECKS)
