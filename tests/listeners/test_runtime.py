"""Listeners started, stopped, added, updated and removed at run time without touching the
clients of other listeners; per-listener limits, authentication switch and mountpoint."""
from __future__ import annotations

import socket

import pytest

from emqpy.listeners import (
    ListenerError, reconcile, restart_listener, start_listener, stop_listener,
)

from support.rawmqtt import connect_packet
from support.waiting import WAIT, wait_until

from .helpers import closed_by_peer, recv_exactly

CONNACK_OK = b"\x20\x02\x00\x00"

def _pair(msg) -> tuple:
    return msg.topic, msg.payload



def _raw_connect(port, clientid, username=None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(connect_packet(clientid, version=4, username=username))
        return recv_exactly(s, 4)


def test_stop_and_start_one_listener_keeps_the_others(make_broker, clients):
    h = make_broker()
    ls = h.broker.listeners
    ca = h.broker.data_dir / "certs" / "cacert.pem"
    tcp = clients(h.port, client_id="stays-tcp")
    tls = clients(ls["ssl:default"].port, ca=ca, client_id="stays-ssl")
    ws = clients(ls["ws:default"].port, transport="websockets", client_id="goes-ws")
    for c in (tcp, tls, ws):
        c.connect()
    tcp.subscribe("keep/#")
    ws_port = ls["ws:default"].port
    h.call(stop_listener, h.broker, "ws:default")
    assert ws.disconnected.wait(WAIT)
    assert ls["ws:default"].running is False and ls["ws:default"].current_connections == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ws_port), timeout=WAIT).close()
    # The others did not notice: same channels, still delivering.
    assert {"stays-tcp", "stays-ssl"} <= set(h.broker.channels)
    tls.publish("keep/1", b"still here")
    assert _pair(tcp.get()) == ("keep/1", b"still here")
    h.call(restart_listener, h.broker, "ws:default")
    assert ls["ws:default"].running
    ws2 = clients(ls["ws:default"].port, transport="websockets", client_id="back-ws")
    ws2.connect()
    ws2.publish("keep/2", b"ws is back")
    assert _pair(tcp.get()) == ("keep/2", b"ws is back")
    assert not tcp.disconnected.is_set() and not tls.disconnected.is_set()


def test_add_update_remove_every_type(make_broker, clients, pki):
    from .helpers import ssl_opts
    h = make_broker()
    tcp = clients(h.port, client_id="bystander")
    tcp.connect()
    ca = h.broker.data_dir / "certs" / "cacert.pem"
    kinds = {
        "tcp": ({}, {}),
        "ssl": ({"ssl_options": ssl_opts(pki)}, {"ca": pki.ca}),
        "ws": ({"websocket": {"mqtt_path": "/x"}}, {"transport": "websockets", "ws_path": "/x"}),
        "wss": ({}, {"transport": "websockets", "ca": ca}),
    }
    for t, (extra, kw) in kinds.items():
        lst = h.call(start_listener, h.broker, t, "extra",
                   {"bind": "127.0.0.1:0", **extra})
        assert h.broker.listeners[f"{t}:extra"] is lst and lst.running
        c = clients(lst.port, client_id=f"on-{t}-extra", **kw)
        c.connect()
        # Update: same id, new settings; the listener restarts, its clients reconnect.
        lst2 = h.call(start_listener, h.broker, t, "extra",
                    {"bind": "127.0.0.1:0", "mountpoint": "m/", **extra})
        assert lst2.mountpoint == "m/" and lst2.running and not lst.running
        assert c.disconnected.wait(WAIT)
        h.call(lambda: stop_listener(h.broker, f"{t}:extra", remove=True))
        assert f"{t}:extra" not in h.broker.listeners
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", lst2.port), timeout=WAIT).close()
    assert "bystander" in h.broker.channels and not tcp.disconnected.is_set()


def test_sync_with_config(make_broker, clients):
    from emqpy.config import update_root
    h = make_broker()
    tcp = clients(h.port, client_id="cfg-bystander")
    tcp.connect()
    b = h.broker

    async def change(root):
        old, new = b.config, update_root(b.config, "listeners", root)
        await reconcile(b, old, new)
        b.config = new
    h.call(change, {"tcp": {"fromconf": {"bind": "127.0.0.1:0"}},
                    "ws": {"default": {"enable": False}}})
    assert b.listeners["tcp:fromconf"].running
    assert b.listeners["ws:default"].running is False
    assert _raw_connect(b.listeners["tcp:fromconf"].port, "via-conf") == CONNACK_OK
    assert not tcp.disconnected.is_set()
    bad = {"tcp": {"clash": {"bind": f"127.0.0.1:{h.port}"}}}  # port in use
    with pytest.raises(ListenerError, match="tcp:clash"):
        h.call(change, bad)
    assert "tcp:clash" not in b.listeners  # put back as it was
    assert b.listeners["tcp:default"].running and not tcp.disconnected.is_set()


def test_max_connections(make_broker):
    h = make_broker({"listeners": {"tcp": {"default": {"max_connections": 1}}}})
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as first:
        first.sendall(connect_packet("first", version=4))
        assert recv_exactly(first, 4) == CONNACK_OK
        with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as second:
            assert closed_by_peer(second)
    assert h.broker.listeners["tcp:default"].counters["max_connections"] == 1


def test_max_conn_rate_pauses_accepting(make_broker):
    h = make_broker({"listeners": {"tcp": {"default": {"max_conn_rate": "1/h"}}}})
    lst = h.broker.listeners["tcp:default"]
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as first:
        first.sendall(connect_packet("within-rate", version=4))
        assert recv_exactly(first, 4) == CONNACK_OK
        with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT):  # waits in backlog
            wait_until(lambda: lst.counters["conn_rate_limited"] == 1)
            assert lst.current_connections == 1  # the second one waits for its token


def test_token_bucket():
    from emqpy.listeners.base import TokenBucket
    now = [0.0]
    tb = TokenBucket(2.0, 2.0, clock=lambda: now[0])
    assert [tb.take(), tb.take()] == [0.0, 0.0]
    assert tb.take() == 0.5  # the third token arrives after 1/rate
    now[0] = 1.0
    assert tb.take() == 0.0


def test_access_rules(make_broker):
    h = make_broker({"listeners": {"tcp": {"default": {"access_rules": ["deny 127.0.0.0/8", "allow all"]}},
                                   "ws": {"default": {"access_rules": ["allow 10.0.0.0/8", "deny all"]}}}})
    for port, lid in ((h.port, "tcp:default"), (h.broker.listeners["ws:default"].port, "ws:default")):
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
            assert closed_by_peer(s)
        assert h.broker.listeners[lid].counters["access_denied"] == 1


AUTHN = {"authentication": [{"mechanism": "password_based", "backend": "built_in_database"}]}


def test_enable_authn_per_listener(make_broker):
    h = make_broker(AUTHN)  # an authenticator with no users: nobody gets in...
    b = h.broker
    assert _raw_connect(h.port, "denied") == b"\x20\x02\x00\x05"
    lst = h.call(start_listener, b, "tcp", "open", {"bind": "127.0.0.1:0", "enable_authn": False})
    assert _raw_connect(lst.port, "let-in") == CONNACK_OK  # ...except where authn is off


def test_mountpoint_placeholders(make_broker, clients):
    h = make_broker()
    lst = h.call(start_listener, h.broker, "ws", "mounted",
               {"bind": "127.0.0.1:0", "mountpoint": "devices/${clientid}/"})
    dev = clients(lst.port, transport="websockets", client_id="d1")
    dev.connect()
    dev.subscribe("cmd")
    app = clients(h.port, client_id="app")
    app.connect()
    app.subscribe("devices/#")
    app.publish("devices/d1/cmd", b"reboot")
    assert _pair(dev.get()) == ("cmd", b"reboot")
    dev.publish("up", b"ok")
    got = {_pair(m) for m in app.get_many(2)}
    assert ("devices/d1/up", b"ok") in got


def test_config_change_without_restart(make_broker):
    from emqpy.listeners import listener_config
    h = make_broker()
    lst = h.broker.listeners["tcp:default"]
    new = listener_config("tcp", {**lst.cfg.model_dump(), "mountpoint": "hot/",
                                  "max_connections": 5})
    assert not lst.needs_restart(new)
    h.call(setattr, lst, "cfg", new)
    assert (lst.mountpoint, lst.max_connections, lst.running) == ("hot/", 5, True)
    assert lst.needs_restart(listener_config("tcp", {**new.model_dump(), "max_conn_rate": "5/s"}))
    assert lst.needs_restart(listener_config("tcp", {**new.model_dump(), "bind": "127.0.0.1:1"}))
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as s:
        s.sendall(connect_packet("mounted-now", version=4))
        assert recv_exactly(s, 4) == CONNACK_OK
        ch = wait_until(lambda: h.broker.channels.get("mounted-now"))
        assert ch.mountpoint == "hot/"
