"""The OpenAPI 3.0 document and Swagger UI, served by emqpy itself (works offline)."""
import json
import shutil
import subprocess

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV30SpecValidator

OPERATIONS = {  # the operations this platform provides; each must be documented
    ("/status", "get"), ("/error_codes", "get"), ("/error_codes/{code}", "get"),
    ("/login", "post"), ("/logout", "post"), ("/users", "get"), ("/users", "post"),
    ("/users/{username}", "put"), ("/users/{username}", "delete"),
    ("/users/{username}/change_pwd", "post"), ("/api_key", "get"), ("/api_key", "post"),
    ("/api_key/{name}", "get"), ("/api_key/{name}", "put"), ("/api_key/{name}", "delete"),
}


@pytest.fixture(scope="module")
def doc(api):
    with api.client() as c:
        r = c.get("/api-docs/swagger.json")
    assert r.status_code == 200
    return r.json()


def test_document_is_valid_openapi_30(doc):
    assert doc["openapi"].startswith("3.0.")
    validate(doc, cls=OpenAPIV30SpecValidator)
    assert doc["servers"] == [{"url": "/api/v5"}]
    assert set(doc["components"]["securitySchemes"]) == {"basicAuth", "bearerAuth"}
    assert "3.1" not in json.dumps(doc)[:40]


def test_every_operation_documented(doc):
    ops = {(p, m) for p, item in doc["paths"].items() for m in item}
    assert OPERATIONS <= ops
    for path, method in ops:
        op = doc["paths"][path][method]
        assert op.get("tags"), (path, method)
        assert "security" in op and "responses" in op
        assert "422" not in op["responses"]
        if op["security"]:
            assert op["security"] == [{"basicAuth": []}, {"bearerAuth": []}]
            codes = op["responses"]["401"]["content"]["application/json"]["schema"][
                "properties"]["code"]["enum"]
            assert "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET" in codes


def test_operation_details(doc):
    p = doc["paths"]
    assert p["/status"]["get"]["security"] == [] and p["/login"]["post"]["security"] == []
    assert p["/error_codes"]["get"]["security"] == []
    post = p["/api_key"]["post"]
    assert set(post["responses"]) >= {"200", "400", "401", "409"}
    assert "API_KEY_NOT_ALLOW" in json.dumps(post["responses"]["401"])
    assert "requestBody" in post
    names = {q["name"]: q for q in p["/api_key/{name}"]["get"]["parameters"]}
    assert names["name"]["in"] == "path" and names["name"]["required"] is True
    assert "USER_NOT_FOUND" in json.dumps(p["/users/{username}"]["delete"]["responses"]["404"])
    assert "ERROR_PWD_NOT_MATCH" in json.dumps(
        p["/users/{username}/change_pwd"]["post"]["responses"]["400"])
    assert p["/users/{username}"]["delete"]["responses"]["204"]
    status_params = {q["name"] for q in p["/status"]["get"]["parameters"]}
    assert status_params == {"format"}


def test_swagger_ui_and_assets_served_locally(api):
    with api.client() as c:
        r = c.get("/api-docs/index.html")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        html = r.text
        assert "http" not in html.replace('charset="UTF-8"', "")  # no external URL
        for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                      "swagger-initializer.js", "index.css"):
            assert asset in html
            r = c.get("/api-docs/" + asset)
            assert r.status_code == 200 and len(r.content) > 100, asset
        assert "swagger.json" in c.get("/api-docs/swagger-initializer.js").text
        r = c.get("/api-docs", follow_redirects=False)
        assert r.status_code in (301, 302, 307, 308)
        assert r.headers["location"].endswith("/api-docs/index.html")
        assert c.get("/api-docs/../../etc/passwd").status_code == 404
        assert c.get("/api-docs/nonexistent.js").status_code == 404


def test_swagger_support_off_hides_docs(make_broker):
    h = make_broker({"dashboard": {"swagger_support": False}})
    with h.client() as c:
        assert c.get("/api-docs/index.html").status_code == 404
        assert c.get("/api-docs/swagger.json").status_code == 404
        assert c.get("/api/v5/status").status_code == 200


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_headless_chromium_renders_swagger_ui(api, tmp_path):
    """Swagger UI's scripts run, fetch swagger.json and render every tag's operations."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", f"--user-data-dir={tmp_path}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=20000", "--dump-dom", api.url("/api-docs/index.html")],
        capture_output=True, text=True, timeout=120)
    dom, log = proc.stdout, proc.stderr
    assert proc.returncode == 0, log[-2000:]
    assert "swagger-ui" in dom
    assert "opblock" in dom, "no operations rendered:\n" + dom[:2000]
    for text in ("/api_key", "/users/{username}/change_pwd", "/login", "API Keys", "Dashboard"):
        assert text in dom, text
    bad = [line for line in log.splitlines()
           if "Uncaught" in line or "Failed to load resource" in line
           or ("CONSOLE" in line and "rror" in line)]
    assert not bad, "\n".join(bad)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_swagger_try_it_out_with_basic_auth(api, tmp_path):
    """Swagger UI authorizes with Basic auth and executes GET /users against the server."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", f"--user-data-dir={tmp_path}", "--virtual-time-budget=30000",
         "--dump-dom", api.url("/probe-tryit.html")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = proc.stdout.index('<pre id="result">') + len('<pre id="result">')
    result = proc.stdout[start:proc.stdout.index("</pre>", start)]
    assert result.startswith("STATUS 200"), result
    assert "admin" in result and "backend" in result
