"""`PUT /configs` on the `authentication` and `authorization` roots, as EMQX's config load does
for them: merge (by authenticator id / source type) or replace, applied at once to the running
chain and sources, which the authn/authz features keep (across a restart too)."""
from __future__ import annotations

import json

import pytest

from support.mqttclient import MqttClient

pytestmark = pytest.mark.emqpy_only

BUILTIN = "password_based:built_in_database"
HOCON = {"content-type": "text/plain"}


def _put(node, text: str, mode: str | None = None, status: int = 200):
    r = node.api.put("/configs", content=text, headers=HOCON,
                     params={"mode": mode} if mode else None)
    assert r.status_code == status, r.text
    return r


def _configs(node, key: str):
    return node.get("/configs", headers={"accept": "application/json"})[key]


def _connack(node, username=None, password=None) -> int:
    c = MqttClient(node.host, node.port)
    try:
        c.connect(username=username, password=password, expect_rc=None)
        return c.connack_rc
    finally:
        c.close()


def test_authentication_merge_and_replace(make_broker):
    node = make_broker()
    assert _connack(node) == 0  # no authenticator: anonymous clients get in
    _put(node, 'authentication = [{mechanism = password_based, backend = built_in_database,'
               ' password_hash_algorithm {name = sha256, salt_position = suffix}}]')
    node.ok("POST", f"/authentication/{BUILTIN}/users",
            json={"user_id": "u1", "password": "p1"}, status=201)
    assert _connack(node) == 0x87 and _connack(node, "u1", "p1") == 0
    chain = node.get("/authentication")
    assert [a["id"] for a in chain] == [BUILTIN]
    assert chain[0]["password_hash_algorithm"]["salt_position"] == "suffix"
    # merge: the entry with the same id is deep-merged (users kept), a new one is appended
    _put(node, 'authentication = [{mechanism = password_based, backend = built_in_database,'
               ' enable = false},'
               ' {mechanism = jwt, algorithm = hmac-based, secret = "s3cr3t-key-of-32-bytes-ok!!"}]')
    chain = node.get("/authentication")
    assert [a["id"] for a in chain] == [BUILTIN, "jwt"]
    assert chain[0]["enable"] is False
    assert chain[0]["password_hash_algorithm"]["salt_position"] == "suffix"
    shown = _configs(node, "authentication")
    assert [a["mechanism"] for a in shown] == ["password_based", "jwt"]
    assert shown[1]["secret"] == "******"
    # "******" sent back keeps the secret
    _put(node, json.dumps({"authentication": [shown[1] | {"enable": True}]}))
    jwt = node.broker.authn.chain.get("jwt")
    assert jwt.cfg["secret"] == "s3cr3t-key-of-32-bytes-ok!!"
    # replace: the chain is what is given; the built-in database left out is removed
    _put(node, 'authentication = [{mechanism = password_based, backend = built_in_database}]',
         mode="replace")
    assert [a["id"] for a in node.get("/authentication")] == [BUILTIN]
    assert node.get(f"/authentication/{BUILTIN}/users")["data"] == [
        {"user_id": "u1", "is_superuser": False}]  # same id kept: its users too
    _put(node, "authentication = []", mode="replace")
    assert node.get("/authentication") == [] and _connack(node) == 0
    # kept by the feature across a restart
    _put(node, 'authentication = [{mechanism = password_based, backend = built_in_database}]')
    node.restart()
    assert [a["id"] for a in node.get("/authentication")] == [BUILTIN]


def test_authentication_bad_entries_change_nothing(make_broker):
    node = make_broker()
    _put(node, 'authentication = [{mechanism = password_based, backend = built_in_database}]')
    r = _put(node, 'authentication = [{mechanism = password_based, backend = built_in_database,'
                   ' user_id_type = nobody}]', status=400)
    assert r.json()["code"] == "UPDATE_FAILED" and "user_id_type" in r.text
    r = _put(node, 'authentication = [{mechanism = password_based, backend = nowhere}]',
             status=400)
    assert "nowhere" in r.text
    # a bad root elsewhere in the same request: the authenticator is not added either
    r = _put(node, 'mqtt { max_inflight = -1 }\nauthentication = [{mechanism = jwt,'
                   ' algorithm = hmac-based, secret = abc}]', status=400)
    assert [a["id"] for a in node.get("/authentication")] == [BUILTIN]


def test_authorization_merge_and_replace(make_broker):
    node = make_broker()
    c = MqttClient(node.host, node.port).connect()
    assert c.subscribe("secret/1", 0) == [0]
    c.close()
    rules = '{allow, all, subscribe, [\\"open/#\\"]}.\\n{deny, all}.\\n'
    _put(node, 'authorization { no_match = deny, cache { enable = false },'
               f' sources = [{{type = file, enable = true, rules = "{rules}"}}] }}')
    settings = node.get("/authorization/settings")
    assert settings["no_match"] == "deny" and settings["cache"]["enable"] is False
    c = MqttClient(node.host, node.port).connect()
    assert c.subscribe("secret/1", 0) == [0x87] and c.subscribe("open/1", 0) == [0]
    c.close()
    # merge: settings deep-merged, the file source merged by type, a new source appended
    _put(node, 'authorization { deny_action = disconnect,'
               ' sources = [{type = built_in_database, enable = true}] }')
    settings = node.get("/authorization/settings")
    assert (settings["no_match"], settings["deny_action"]) == ("deny", "disconnect")
    shown = _configs(node, "authorization")
    assert [s["type"] for s in shown["sources"]] == ["file", "built_in_database"]
    # replace: EMQX's defaults for the settings not given, only the sources given
    _put(node, 'authorization { sources = [] }', mode="replace")
    settings = node.get("/authorization/settings")
    assert (settings["no_match"], settings["deny_action"]) == ("allow", "ignore")
    assert node.get("/authorization/sources")["sources"] == []
    c = MqttClient(node.host, node.port).connect()
    assert c.subscribe("secret/1", 0) == [0]
    c.close()
    r = _put(node, 'authorization { no_match = maybe }', status=400)
    assert "no_match" in r.text
    r = _put(node, 'authorization { sources = [{type = mongodb}] }', status=400)
    assert "mongodb" in r.text
    assert node.get("/authorization/settings")["no_match"] == "allow"
