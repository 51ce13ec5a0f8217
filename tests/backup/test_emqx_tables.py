"""An EMQX 5.8 backup's built-in database tables (Mnesia backups under mnesia/) imported into
emqpy: the files are written by Erlang itself (disk_log, as mnesia:backup writes them, with
the records EMQX keeps), then imported over the API and checked with real clients."""
from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from support.mqttclient import uid
from support.node import assert_error
from support.rawmqtt import SUBACK, subscribe_packet

pytestmark = pytest.mark.skipif(shutil.which("escript") is None,
                                reason="needs Erlang (escript) to write Mnesia backup files")

# The records, in Erlang syntax, as EMQX 5.8 keeps them (emqx_dashboard_admin, emqx_mgmt_auth,
# emqx_banned, emqx_authn_mnesia, emqx_authz_mnesia, emqx_retainer_mnesia).
TABLES = {
    "emqx_admin": ("[username, pwdhash, description, role, extra]", """[
        {emqx_admin, <<"ops">>, Hash(<<"opsPass123">>), <<"operator">>, <<"administrator">>,
         #{}}]"""),
    "emqx_app": ("[name, api_key, api_secret_hash, enable, extra, expired_at, created_at]", """[
        {emqx_app, <<"emqxkey">>, <<"0123456789abcdef">>, Hash(<<"s3cretSecret">>), true,
         #{desc => <<"from emqx">>, role => <<"administrator">>}, infinity, 1700000000}]"""),
    "emqx_banned": ("[who, by, reason, at, until]", """[
        {emqx_banned, {clientid, <<"emqx-banned">>}, <<"mgmt_api">>, <<"spam">>, 1700000000,
         4000000000},
        {emqx_banned, {peerhost, {10,1,2,3}}, <<"mgmt_api">>, <<>>, 1700000000, 4000000000}]"""),
    "emqx_banned_rules": ("[who, by, reason, at, until]", """[
        {emqx_banned_rules, {clientid_re, {element(2, re:compile(<<"^evil">>)), <<"^evil">>}},
         <<"mgmt_api">>, <<>>, 1700000000, 4000000000},
        {emqx_banned_rules, {peerhost_net, {{192,168,0,0}, {192,168,255,255}, 16}},
         <<"mgmt_api">>, <<>>, 1700000000, 4000000000}]"""),
    "emqx_authn_mnesia": ("[user_id, password_hash, salt, is_superuser]", """[
        {emqx_authn_mnesia, {'mqtt:global', <<"emqx-user">>},
         hex(crypto:hash(sha256, <<"userPass", "0f1e2d3c4b5a69788796a5b4c3d2e1f0">>)),
         <<"0f1e2d3c4b5a69788796a5b4c3d2e1f0">>, false},
        {emqx_authn_mnesia, {'mqtt:other_chain', <<"skipped">>}, <<"x">>, <<"y">>, false}]"""),
    "emqx_acl": ("[who, rules]", """[
        {emqx_acl, {1, <<"emqx-user">>},
         [{deny, {subscribe, [{qos, [0,1,2]}, {retain, all}]}, <<"secret/#">>},
          {allow, all, <<"open/#">>}]}]"""),
    "emqx_retainer_message": ("[topic, msg, expiry_time]", """[
        {emqx_retainer_message, [<<"emqx">>, <<"kept">>],
         {message, <<0,6,27,41,118,185,49,47,244,69,0,0,13,20,0,2>>, 1, <<"emqx-publisher">>,
          #{dup => false, retain => true},
          #{peerhost => {127,0,0,1}, username => undefined, proto_ver => 5,
            properties => #{'User-Property' => [{<<"k">>, <<"v">>}],
                            'Content-Type' => <<"text/plain">>}},
          <<"emqx/kept">>, <<"from EMQX">>, 1718714759721, #{}},
         0}]"""),
    "emqx_psk": ("[psk_id, shared_secret, extra]", """[
        {emqx_psk, <<"id">>, <<"secret">>, undefined}]"""),
}

ESCRIPT = r"""#!/usr/bin/env escript
main([Dir]) ->
    Hash = fun(Pw) -> Salt = <<1,2,3,4>>,
                      <<Salt/binary, (crypto:hash(sha256, <<Salt/binary, Pw/binary>>))/binary>>
           end,
    lists:foreach(fun({Tab, Attrs, Records}) ->
        File = filename:join(Dir, atom_to_list(Tab)),
        {ok, Log} = disk_log:open([{name, Tab}, {file, File}]),
        Header = {log_header, backup_log, "1.2", "4.21.4", 'emqx@127.0.0.1', {1700,0,0}},
        Schema = {schema, Tab, [{name, Tab}, {type, set}, {record_name, Tab},
                                {attributes, Attrs}]},
        ok = disk_log:log_terms(Log, [Header, Schema | Records]),
        ok = disk_log:close(Log)
    end, tables(Hash)).

hex(Bin) -> list_to_binary([io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin]).

tables(Hash) -> [%TABLES%].
"""

CLUSTER_HOCON = """
authentication = [{backend = built_in_database, mechanism = password_based,
                   password_hash_algorithm {name = sha256, salt_position = suffix}}]
authorization {no_match = allow, sources = [{type = built_in_database}]}
"""


def _emqx_backup(tmp_path: Path, name: str) -> bytes:
    script = ESCRIPT.replace("%TABLES%", ",\n".join(
        f"{{{tab}, {attrs}, {records}}}" for tab, (attrs, records) in TABLES.items()))
    (tmp_path / "mk.escript").write_text(script)
    mnesia = tmp_path / "mnesia"
    mnesia.mkdir()
    subprocess.run(["escript", str(tmp_path / "mk.escript"), str(mnesia)], check=True,
                   timeout=60)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for arc, data in [("META.hocon", b'edition = ce\nversion = "5.8.1"\n'),
                          ("cluster.hocon", CLUSTER_HOCON.encode())] + [
                (f"mnesia/{p.name}", p.read_bytes()) for p in sorted(mnesia.iterdir())]:
            info = tarfile.TarInfo(f"{name}/{arc}")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_emqx_tables_are_imported(make_broker, tmp_path):
    n = make_broker()
    name = "emqx-export-2024-06-18-12-46-00.000"
    content = _emqx_backup(tmp_path, name)
    r = n.api.post("/data/files", files={"filename": (name + ".tar.gz", content)})
    assert r.status_code == 204, r.text
    n.ok("POST", "/data/import", 204, json={"filename": name + ".tar.gz"})

    # dashboard user and API key, with the hashes EMQX made
    with n.client(auth=("ops", "opsPass123")) as c:
        assert c.get("/api/v5/nodes").status_code == 200
    with n.client(auth=("ops", "wrongPass1")) as c:
        assert c.get("/api/v5/nodes").status_code == 401
    with n.client(auth=("0123456789abcdef", "s3cretSecret")) as c:
        assert c.get("/api/v5/nodes").status_code == 200
    key = [k for k in n.get("/api_key") if k["name"] == "emqxkey"][0]
    assert key["desc"] == "from emqx" and key["expired_at"] == "infinity"
    # bans of every kind
    bans = {(b["as"], b["who"]) for b in n.get("/banned")["data"]}
    assert bans == {("clientid", "emqx-banned"), ("peerhost", "10.1.2.3"),
                    ("clientid_re", "^evil"), ("peerhost_net", "192.168.0.0/16")}
    assert n.connack("emqx-banned") in (0x87, 0x8A)
    assert n.connack("evil-twin") in (0x87, 0x8A)
    # the authentication user (global chain only) and its authorization rules
    users = n.get("/authentication/password_based:built_in_database/users")["data"]
    assert [u["user_id"] for u in users] == ["emqx-user"]
    assert n.connack(uid("u"), username="emqx-user", password="nope") == 0x86
    c, rc = n.connect(uid("u"), username="emqx-user", password="userPass")
    assert rc == 0
    c.send(subscribe_packet(1, [("secret/a", 0), ("open/a", 0)]))
    assert c.expect(SUBACK).rcs == [0x87, 0]
    # the retained message, with its properties
    sub = n.mqtt(uid("s"), username="emqx-user", password="userPass")
    sub.subscribe("emqx/#", 1)
    msg = sub.get()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("emqx/kept", b"from EMQX", 1, True)
    assert msg.properties.UserProperty == [("k", "v")]
    assert msg.properties.ContentType == "text/plain"


def test_damaged_emqx_table_is_reported(make_broker, tmp_path):
    n = make_broker()
    name = "emqx-export-damaged"
    content = _emqx_backup(tmp_path, name)
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    files[f"{name}/mnesia/emqx_banned"] = files[f"{name}/mnesia/emqx_banned"][:-5]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for arc, data in files.items():
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert n.api.post("/data/files", files={"filename": (name + ".tar.gz", buf.getvalue())}
                      ).status_code == 204
    assert_error(n.api.post("/data/import", json={"filename": name + ".tar.gz"}), 400,
                 "BAD_REQUEST", "Failed to import built-in database table: emqx_banned")
    # the other tables were imported
    assert n.get("/authentication/password_based:built_in_database/users")["data"]
