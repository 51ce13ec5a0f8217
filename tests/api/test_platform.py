"""Status, error codes, the error body, validation/404/405/500 handling and pagination."""
import logging

from emqpy.api.errors import ERROR_CODE_NAMES
from support.node import assert_error

SEED_CODES = """WRONG_USERNAME_OR_PWD WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET BAD_REQUEST
NOT_MATCH ALREADY_EXISTS BAD_CONFIG_SCHEMA BAD_LISTENER_ID BAD_NODE_NAME BAD_RPC BAD_TOPIC
EXCEED_LIMIT INVALID_PARAMETER CONFLICT NO_DEFAULT_VALUE DEPENDENCY_EXISTS
MESSAGE_ID_SCHEMA_ERROR INVALID_ID MESSAGE_ID_NOT_FOUND NOT_FOUND CLIENTID_NOT_FOUND
CLIENT_NOT_FOUND RESOURCE_NOT_FOUND TOPIC_NOT_FOUND USER_NOT_FOUND INTERNAL_ERROR
SERVICE_UNAVAILABLE SOURCE_ERROR UPDATE_FAILED REST_FAILED CLIENT_NOT_RESPONSE""".split()


def test_status_text_and_json_without_auth(api):
    node = api.broker.node_name
    with api.client() as c:
        for path in ("/status", "/api/v5/status"):
            r = c.get(path)
            assert r.status_code == 200
            assert r.text == f"Node {node} is started\nemqx is running"
            r = c.get(path, params={"format": "json"})
            assert r.status_code == 200
            assert r.json() == {"rel_vsn": "5.8.1", "node_name": node,
                                "broker_status": "started", "app_status": "running"}
        r = c.get("/status", params={"format": "xml"})  # EMQX: any other format is text
        assert r.status_code == 200 and r.text.startswith(f"Node {node} is started")


def test_status_503_when_broker_not_running(api):
    api.broker.running = False
    try:
        with api.client() as c:
            r = c.get("/api/v5/status")
            assert r.status_code == 503
            assert r.text.endswith("emqx is not_running")
            r = c.get("/status?format=json")
            assert r.status_code == 503 and r.json()["app_status"] == "not_running"
    finally:
        api.broker.running = True


def test_error_codes_lists_the_seed_table_and_58_names(api):
    with api.client() as c:
        r = c.get("/api/v5/error_codes")
        assert r.status_code == 200
        codes = {e["code"]: e["description"] for e in r.json()}
        for code in SEED_CODES + ["BAD_USERNAME_OR_PWD", "BAD_API_KEY_OR_SECRET"]:
            assert code in codes and codes[code]
        assert codes["BAD_TOPIC"] == ("Topic syntax error, Topic needs to comply with the MQTT "
                                      "protocol standard")
        r = c.get("/api/v5/error_codes/NOT_FOUND")
        assert r.json() == {"code": "NOT_FOUND",
                            "description": "Resource was not found or does not exist"}
        assert_error(c.get("/api/v5/error_codes/NOPE"), 400, "BAD_REQUEST", "code")
    assert len(set(ERROR_CODE_NAMES)) == len(ERROR_CODE_NAMES)


def test_unknown_path_is_json_404_and_wrong_method_405(api):
    with api.client(auth=("admin", "public")) as c:
        assert_error(c.get("/api/v5/no/such/thing"), 404, "NOT_FOUND", "/api/v5/no/such/thing")
        assert_error(c.get("/nothing-here"), 404, "NOT_FOUND")
        assert_error(c.delete("/api/v5/status"), 405, "METHOD_NOT_ALLOWED", "DELETE")
        assert_error(c.patch("/api/v5/users"), 405, "METHOD_NOT_ALLOWED")


def test_bad_input_gives_400_naming_the_field(api):
    with api.client(auth=("admin", "public")) as c:
        h = {"content-type": "application/json"}
        assert_error(c.post("/api/v5/api_key", content=b"{not json", headers=h),
                     400, "BAD_REQUEST", "malformed JSON")
        assert_error(c.post("/api/v5/api_key", content=b"[1, 2]", headers=h),
                     400, "BAD_REQUEST", "JSON object")
        assert_error(c.post("/api/v5/api_key", content=b"", headers=h), 400, "BAD_REQUEST")
        assert_error(c.post("/api/v5/api_key", json={}), 400, "BAD_REQUEST", "name")
        assert_error(c.post("/api/v5/api_key", json={"name": "k", "enable": "maybe"}),
                     400, "BAD_REQUEST", "enable")
        assert_error(c.post("/api/v5/users", json={"username": 5, "password": "x"}),
                     400, "BAD_REQUEST", "username")
        assert_error(c.get("/api/v5/probe/items", params={"limit": "abc"}),
                     400, "BAD_REQUEST", "limit")
        assert_error(c.get("/api/v5/probe/items", params={"limit": 10001}),
                     400, "BAD_REQUEST", "limit")
        assert_error(c.get("/api/v5/probe/items", params={"page": 0}),
                     400, "BAD_REQUEST", "page")


def test_internal_error_is_500_and_logged(api, caplog):
    with caplog.at_level(logging.ERROR, logger="emqpy.api"):
        with api.client(auth=("admin", "public")) as c:
            assert_error(c.get("/api/v5/probe/crash"), 500, "INTERNAL_ERROR")
            # the server is still serving
            assert c.get("/api/v5/status").status_code == 200
    rec = [r for r in caplog.records if r.name == "emqpy.api" and r.exc_info]
    assert rec and "probe crash" in str(rec[-1].exc_info[1])


def test_pagination_helper(api):
    with api.client(auth=("admin", "public")) as c:
        r = c.get("/api/v5/probe/items").json()
        assert r["meta"] == {"page": 1, "limit": 100, "count": 250, "hasnext": True}
        assert [x["n"] for x in r["data"]] == list(range(100))
        r = c.get("/api/v5/probe/items", params={"page": 3, "limit": 100}).json()
        assert r["meta"] == {"page": 3, "limit": 100, "count": 250, "hasnext": False}
        assert [x["n"] for x in r["data"]] == list(range(200, 250))
        r = c.get("/api/v5/probe/items", params={"page": 9, "limit": 1000}).json()
        assert r["data"] == [] and r["meta"]["hasnext"] is False
