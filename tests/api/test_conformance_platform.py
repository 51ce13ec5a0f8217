"""Issue 12, points 6-8: platform-level EMQX conformance of the HTTP API.

6. ``GET /status?format=<anything but json>`` answers the text status (EMQX's ``format`` is a
   free string).
7. A JSON-body endpoint called with another Content-Type answers 415 UNSUPPORTED_MEDIA_TYPE.
8. Percent-encoded path parameters (``/``, ``%``, ``?``, ``#``, spaces, non-ASCII) reach the
   handler decoded and intact, on every route with a path parameter.
"""
import pytest

from .test_platform import assert_error


@pytest.mark.parametrize("path", ["/status", "/api/v5/status"])
@pytest.mark.parametrize("fmt", ["xml", "JSON", "", "text", "yaml&x=1"])
def test_status_format_other_than_json_is_text(api, path, fmt):
    node = api.broker.node_name
    with api.client() as c:
        r = c.get(path, params={"format": fmt})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text == f"Node {node} is started\nemqx is running"
        assert r.headers["retry-after"] == "15"
        r = c.get(path, params={"format": "json"})
        assert r.status_code == 200 and r.json()["app_status"] == "running"
        assert r.headers["retry-after"] == "15"
