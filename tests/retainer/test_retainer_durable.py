"""Retained messages are durable: they survive a clean restart and a kill -9."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest


from support.mqttclient import MqttClient, props, uid
from support.servers import free_port
from support.waiting import wait_until


def test_retained_survive_restart(make_broker, tmp_path):
    bt = make_broker(data_dir=tmp_path)
    try:
        pub = bt.mqtt()
        pub.publish("keep/a", b"alpha", qos=1, retain=True, properties=props(
            "PUBLISH", UserProperty=[("k", "v")], ContentType="text/plain",
            CorrelationData=b"\x00\x01"))
        pub.publish("keep/b", b"beta", qos=2, retain=True)
        pub.publish("keep/gone", b"x", qos=1, retain=True)
        pub.publish("keep/gone", b"", qos=1, retain=True)  # deleted before the restart
        pub.close()
        msgid = bt.broker.retainer.store.get("keep/a").id
    finally:
        bt.stop()

    bt.start()
    try:
        assert bt.broker.retainer.store.get("keep/a").id == msgid
        sub = bt.mqtt()
        sub.subscribe("keep/#", 2)
        got = {}
        for _ in range(2):
            m = sub.get()
            got[m.topic] = m
        sub.expect_none()
        assert set(got) == {"keep/a", "keep/b"}
        a = got["keep/a"]
        assert (a.payload, a.retain, a.qos) == (b"alpha", True, 1)
        assert a.properties.UserProperty == [("k", "v")]
        assert a.properties.ContentType == "text/plain"
        assert a.properties.CorrelationData == b"\x00\x01"
        assert (got["keep/b"].payload, got["keep/b"].qos) == (b"beta", 2)
        sub.close()
    finally:
        bt.stop()


def test_message_expiry_is_absolute_across_restart(make_broker, tmp_path):
    bt = make_broker(data_dir=tmp_path)
    try:
        pub = bt.mqtt()
        pub.publish("exp/short", b"s", qos=1, retain=True,
                    properties=props(MessageExpiryInterval=1))
        pub.publish("exp/long", b"l", qos=1, retain=True,
                    properties=props(MessageExpiryInterval=3600))
        pub.close()
        assert bt.broker.retainer.sync(10)
        rows = dict(sqlite3.connect(tmp_path / "emqpy.db").execute(
            "SELECT topic, expire_at FROM retained WHERE topic LIKE 'exp/%'").fetchall())
        # stored as wall-clock deadlines, so downtime counts against them
        assert rows["exp/long"] - rows["exp/short"] == pytest.approx(3599, abs=5)
    finally:
        bt.stop()
    wait_until(lambda: rows["exp/short"] < time.time(), what="the short expiry")
    bt.start()
    try:
        assert bt.broker.retainer.store.get("exp/short") is None  # dropped at load
        sub = bt.mqtt()
        sub.subscribe("exp/+", 1)
        m = sub.get()
        assert m.topic == "exp/long"
        assert 3000 < m.properties.MessageExpiryInterval <= 3600
        sub.expect_none()
        sub.close()
        assert bt.broker.retainer.sync(10)
        left = sqlite3.connect(tmp_path / "emqpy.db").execute(
            "SELECT topic FROM retained WHERE topic LIKE 'exp/%'").fetchall()
        assert left == [("exp/long",)]
    finally:
        bt.stop()


def test_clear_interval_purges_expired(make_broker, tmp_path):
    bt = make_broker({"retainer": {"msg_expiry_interval": "1s",
                                   "msg_clear_interval": "1s"}}, data_dir=tmp_path)
    try:
        pub = bt.mqtt()
        pub.publish("purge/me", b"p", qos=1, retain=True)
        pub.close()
        assert bt.broker.retainer.store.get("purge/me") is not None
        # no subscriber and no API call looks at it: only the periodic purge can remove it
        wait_until(lambda: bt.call(lambda: bt.broker.retainer.store.get("purge/me")) is None,
                   what="the purge")
        assert bt.broker.retainer.sync(10)
        n = sqlite3.connect(tmp_path / "emqpy.db").execute(
            "SELECT count(*) FROM retained WHERE topic='purge/me'").fetchone()[0]
        assert n == 0
    finally:
        bt.stop()


def _spawn(data_dir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ,
               EMQX_LISTENERS__TCP__DEFAULT__BIND=f"127.0.0.1:{port}",
               EMQX_DASHBOARD__LISTENERS__HTTP__BIND=f"127.0.0.1:{free_port()}",
               # only the one TCP listener: the default ports may be taken on a test machine
               EMQX_LISTENERS__SSL__DEFAULT__ENABLE="false",
               EMQX_LISTENERS__WS__DEFAULT__ENABLE="false",
               EMQX_LISTENERS__WSS__DEFAULT__ENABLE="false")
    log = open(data_dir / "broker.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "emqpy", "start", "--data-dir", str(data_dir)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()

    def up():
        if proc.poll() is not None:
            text = (data_dir / "broker.log").read_bytes().decode(errors="replace")
            raise AssertionError(f"broker exited: {text[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    wait_until(up, what="the broker subprocess to listen", timeout=30)
    return proc


def test_retained_survive_kill_9(tmp_path):
    port = free_port()
    t = uid("k9")
    proc = _spawn(tmp_path, port)
    try:
        pub = MqttClient("127.0.0.1", port).connect()
        for i in range(50):
            pub.publish(f"{t}/{i}", f"v{i}".encode(), qos=1, retain=True)
        pub.close()
        db = sqlite3.connect(tmp_path / "emqpy.db")
        wait_until(lambda: db.execute("SELECT count(*) FROM retained WHERE topic LIKE ?",
                                      (t + "/%",)).fetchone()[0] == 50,
                   what="the retained messages to be committed")
        db.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    proc = _spawn(tmp_path, port)
    try:
        sub = MqttClient("127.0.0.1", port).connect()
        sub.subscribe(f"{t}/#", 1)
        got = {}
        for _ in range(50):
            m = sub.get()
            got[m.topic] = m.payload
        assert got == {f"{t}/{i}": f"v{i}".encode() for i in range(50)}
        sub.close()
    finally:
        proc.terminate()
        proc.wait(10)
