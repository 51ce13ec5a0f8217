"""`bootstrap_file` / `bootstrap_type` of the built-in database authenticator (EMQX's
emqx_authn_mnesia): users from a CSV or JSON file are added when the authenticator is created
or the broker starts; users already in the database stay as they are."""
from __future__ import annotations

import hashlib
import json
import logging

from support.mqttclient import MqttClient

BUILTIN = "password_based:built_in_database"


def _authn(path, kind="plain", **extra) -> dict:
    return {"authentication": [{"mechanism": "password_based", "backend": "built_in_database",
                                "bootstrap_file": str(path), "bootstrap_type": kind, **extra}]}


def _connack(node, username, password, version=5) -> int:
    c = MqttClient(node.host, node.port, version=version)
    try:
        c.connect(username=username, password=password, expect_rc=None)
        return c.connack_rc
    finally:
        c.close()


def test_plain_csv_users_connect_with_paho(make_broker, tmp_path):
    f = tmp_path / "users.csv"
    f.write_text("user_id,password,is_superuser\nalice,alice-pw,true\nbob,bob-pw,false\n")
    node = make_broker(_authn(f))
    assert _connack(node, "alice", "alice-pw") == 0
    assert _connack(node, "bob", "bob-pw", version=4) == 0
    assert _connack(node, "bob", "wrong") == 0x86
    assert _connack(node, "carol", "x") == 0x87  # not in the file: nobody knows her
    users = node.get(f"/authentication/{BUILTIN}/users")["data"]
    assert {(u["user_id"], u["is_superuser"]) for u in users} == {("alice", True),
                                                                  ("bob", False)}
    cfg = node.get(f"/authentication/{BUILTIN}")
    assert cfg["bootstrap_file"] == str(f) and cfg["bootstrap_type"] == "plain"


def test_hashed_json_users(make_broker, tmp_path):
    salt = "5a1t"
    digest = hashlib.sha256((salt + "dave-pw").encode()).hexdigest()  # salt_position prefix
    f = tmp_path / "users.json"
    f.write_text(json.dumps([{"user_id": "dave", "password_hash": digest, "salt": salt,
                              "is_superuser": False}]))
    node = make_broker(_authn(f, "hash"))
    assert _connack(node, "dave", "dave-pw") == 0
    assert _connack(node, "dave", "nope") == 0x86


def test_existing_users_are_kept_and_new_ones_added_at_restart(make_broker, tmp_path):
    f = tmp_path / "users.csv"
    f.write_text("user_id,password,is_superuser\nerin,first-pw,false\n")
    node = make_broker(_authn(f))
    assert _connack(node, "erin", "first-pw") == 0
    # The file changes erin's password and adds frank: at the next start frank is added and
    # erin keeps the password the database has (EMQX does not override existing users).
    f.write_text("user_id,password,is_superuser\nerin,second-pw,false\nfrank,frank-pw,true\n")
    node.restart()
    assert _connack(node, "erin", "first-pw") == 0
    assert _connack(node, "erin", "second-pw") == 0x86
    assert _connack(node, "frank", "frank-pw") == 0
    # A user deleted through the API comes back from the file at the next start, as in EMQX.
    node.ok("DELETE", f"/authentication/{BUILTIN}/users/frank", 204)
    assert _connack(node, "frank", "frank-pw") == 0x87
    node.restart()
    assert _connack(node, "frank", "frank-pw") == 0


def test_created_through_the_api(make_broker, tmp_path):
    f = tmp_path / "users.json"
    f.write_text(json.dumps([{"user_id": "gina", "password": "gina-pw",
                              "is_superuser": "true"}]))
    node = make_broker()
    body = {"mechanism": "password_based", "backend": "built_in_database",
            "bootstrap_file": str(f), "bootstrap_type": "plain",
            "password_hash_algorithm": {"name": "bcrypt", "salt_rounds": 5}}
    node.ok("POST", "/authentication", json=body)
    assert _connack(node, "gina", "gina-pw") == 0
    assert node.get(f"/authentication/{BUILTIN}/users/gina")["is_superuser"] is True


def test_bad_or_missing_file_is_logged_and_skipped(make_broker, tmp_path, caplog):
    bad = tmp_path / "users.csv"
    bad.write_text("user_id,password,is_superuser\nhank,,false\nivy\n")  # ivy: no password
    caplog.set_level(logging.WARNING, logger="emqpy.authn")
    node = make_broker(_authn(bad))
    assert "bootstrap_file" in caplog.text and "password is required" in caplog.text
    assert node.get(f"/authentication/{BUILTIN}/users")["data"] == []  # none of the file
    # The authenticator works with the users it is given otherwise.
    node.ok("POST", f"/authentication/{BUILTIN}/users",
            json={"user_id": "jack", "password": "jack-pw"}, status=201)
    assert _connack(node, "jack", "jack-pw") == 0
    caplog.clear()
    missing = tmp_path / "nowhere.csv"
    r = node.api.put(f"/authentication/{BUILTIN}",
                     json={"mechanism": "password_based", "backend": "built_in_database",
                           "bootstrap_file": str(missing)})
    assert r.is_success, r.text
    assert "cannot read bootstrap_file" in caplog.text
    assert _connack(node, "jack", "jack-pw") == 0
