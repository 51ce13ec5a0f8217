"""One secret masker (emqpy.config.secrets) behind every API that shows config: the
authentication API masks the keys GET /configs masks (a header `token` too), and a mask sent
back keeps the secret."""
from __future__ import annotations

HTTP_ID = "password_based:http"


def test_authentication_masks_every_secret_key(env):
    body = {"mechanism": "password_based", "backend": "http", "method": "post",
            "url": "http://127.0.0.1:9/auth", "headers": {"token": "t0psecret"},
            "body": {"username": "${username}", "password": "${password}"}}
    env.ok("POST", "/authentication", json=body)
    shown = env.ok("GET", f"/authentication/{HTTP_ID}")
    assert shown["headers"]["token"] == "******" and shown["body"]["password"] == "******"
    # What GET showed, sent back with one change: the masked values stay as they were.
    env.ok("PUT", f"/authentication/{HTTP_ID}", 204,
           json={k: v for k, v in {**shown, "request_timeout": "2s"}.items() if k != "id"})
    cfg = env.broker.authn.get(HTTP_ID).cfg
    assert cfg["headers"]["token"] == "t0psecret" and cfg["body"]["password"] == "${password}"
    assert cfg["request_timeout"] == "2s"
