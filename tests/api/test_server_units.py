"""Small pure helpers of the server: bind parsing, durations, config access; and CORS."""
import types

import pytest

from emqpy.api.cfg import cfg_get, duration_seconds
from emqpy.api.server import parse_bind
from emqpy.timefmt import parse_expiry, rfc3339


def test_parse_bind():
    assert parse_bind(18083, 1) == ("0.0.0.0", 18083)
    assert parse_bind("18083", 1) == ("0.0.0.0", 18083)
    assert parse_bind("127.0.0.1:0", 1) == ("127.0.0.1", 0)
    assert parse_bind("[::1]:18083", 1) == ("::1", 18083)
    assert parse_bind(0, 1) is None and parse_bind("0", 1) is None
    assert parse_bind(None, 18083) == ("0.0.0.0", 18083)
    with pytest.raises(ValueError):
        parse_bind("localhost:http", 1)


def test_duration_seconds():
    assert duration_seconds("60m", 1) == 3600
    assert duration_seconds("1h30m", 1) == 5400
    assert duration_seconds("500ms", 1) == 0.5
    assert duration_seconds("1500", 1) == 1.5  # bare digits: milliseconds, as in HOCON
    assert duration_seconds(90.0, 1) == 90.0   # the config model's parsed seconds
    assert duration_seconds("soon", 7) == 7 and duration_seconds(None, 7) == 7


def test_cfg_get_on_dicts_and_objects():
    ns = types.SimpleNamespace(dashboard=types.SimpleNamespace(cors=True))
    assert cfg_get(ns, "dashboard.cors") is True
    assert cfg_get({"dashboard": {"cors": False}}, "dashboard.cors", True) is False
    assert cfg_get({}, "dashboard.cors", "d") == "d"
    assert cfg_get(ns, "dashboard.nope.deeper", 3) == 3


def test_expiry_parsing():
    assert parse_expiry("infinity") is None
    assert parse_expiry(1640995200) == 1640995200
    assert parse_expiry("2022-01-01T00:00:00Z") == 1640995200
    assert parse_expiry("2022-01-01T01:00:00.500+01:00") == 1640995200.5
    assert parse_expiry(-1) == -1  # any epoch second, past ones too (as EMQX)
    for bad in ("2022-01-01", "nope", True, 1e20, float("nan"), "0001-01-01T00:00:00+01:00",
                {}):
        with pytest.raises(ValueError):
            parse_expiry(bad)
    assert rfc3339(1640995200).startswith(("2021-12-31T", "2022-01-01T"))


def test_cors_switch(make_api):
    h = make_api({"dashboard": {"cors": True}})
    with h.client() as c:
        r = c.options("/api/v5/users", headers={"Origin": "http://example.com",
                                                "Access-Control-Request-Method": "GET"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] in ("*", "http://example.com")
