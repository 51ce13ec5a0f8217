"""Small pure helpers of the server (expiry times); and CORS."""
import pytest

from emqpy.timefmt import parse_expiry, rfc3339


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


def test_cors_switch(make_broker):
    h = make_broker({"dashboard": {"cors": True}})
    with h.client() as c:
        r = c.options("/api/v5/users", headers={"Origin": "http://example.com",
                                                "Access-Control-Request-Method": "GET"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] in ("*", "http://example.com")
