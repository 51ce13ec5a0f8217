"""TLS between nodes (rpc.protocol = ssl): routes between the embedded nats-servers and the join
listener take only peers with a certificate of the cluster's CA; a node without it, or without
TLS, is refused with a clear reason; the route and join ports speak TLS only."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from emqpy.cluster import natsd, tls
from emqpy.cluster.membership import JoinError, join_address, request
from listeners.helpers import issue_cert, write_pem
from support.node import Node
from support.servers import wait_port
from support.waiting import wait_until

from cluster.conftest import _offsets
from cluster.test_membership import _conf, _names, _routes
from cluster.test_workers import MAIN, SIBLING, Workers


class Authority:
    """A CA that issues node certificates naming 127.0.0.1 (the nodes' host here)."""

    def __init__(self, folder: Path, name: str):
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = issue_cert(name, self.key, None, self.key, ca=True)
        self.ca_file = self._write("ca.pem", self.cert)

    def _write(self, name: str, obj) -> Path:
        return write_pem(self.folder / name, obj)

    def rpc(self, node: str) -> dict:
        """The `rpc` config of `node`: its own certificate (server and client use) of this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        part = node.partition("@")[0]
        cert = issue_cert(part, self.key, self.cert.subject, key, sans=("127.0.0.1",))
        return {"protocol": "ssl", "certfile": str(self._write(f"{part}.pem", cert)),
                "keyfile": str(self._write(f"{part}.key", key)),
                "cacertfile": str(self.ca_file)}


@pytest.fixture
def authority(tmp_path):
    def make(name: str) -> Authority:
        folder = tmp_path / name
        folder.mkdir()
        return Authority(folder, name)
    return make


@pytest.fixture
def nodes(make_mqtt_broker):
    """nodes(names, ca=None, **cluster) -> started Nodes; `ca` gives each rpc.protocol = ssl
    with a certificate of that Authority."""
    made: list[Node] = []

    def make(names: list[str], ca: Authority | None = None, **cluster) -> list[Node]:
        out = []
        for name in names:
            conf = _conf(name, **cluster)
            if ca is not None:
                conf["rpc"] = ca.rpc(name)
            out.append(Node(make_mqtt_broker(conf)))
        made.extend(out)
        return out

    yield make
    for nd in made:
        nd.stop()


def _info(port: int) -> dict:
    """The INFO a NATS server sends first on `port`, decoded."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        line = b""
        while b"\r\n" not in line:
            chunk = s.recv(4096)
            assert chunk, f"port {port} closed before its INFO"
            line += chunk
    assert line.startswith(b"INFO ")
    return json.loads(line[5:line.index(b"\r\n")])


def _route_port_speaks_tls_only(port: int, ca: Authority, node: str) -> None:
    """The route port waits for a TLS handshake (sends nothing in the clear), refuses a
    plaintext route CONNECT at once, and after a handshake with a certificate of the
    cluster's CA sends its INFO asking for TLS and client certificates."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        with pytest.raises(socket.timeout):
            s.recv(4096)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"intruder"}\r\nPING\r\n')
        started = time.monotonic()
        try:
            assert s.recv(4096) == b""  # closed, no PONG
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 3
    rpc = ca.rpc(node)
    ctx = ssl.create_default_context(cafile=rpc["cacertfile"])
    ctx.load_cert_chain(rpc["certfile"], rpc["keyfile"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                         server_hostname="127.0.0.1") as s:
        line = b""
        while b"\r\n" not in line:
            line += s.recv(4096)
    assert line.startswith(b"INFO ")
    info = json.loads(line[5:line.index(b"\r\n")])
    assert info["tls_required"] is True and info["tls_verify"] is True


def _ask(node: Node, target: Node, ssl_context=None, body=None) -> str:
    """A join request from the test to `target`'s join port (by default: invite `node`); the
    reason it is refused."""
    body = body or {"op": "invite", "node": node.name}
    try:
        asyncio.run(request(target.name, join_address(target.name), "testcookie", body, 5,
                            ssl_context))
    except JoinError as e:
        return str(e)
    return "accepted"


def _cluster_port(node: Node) -> int:
    return natsd.CLUSTER_PORT_BASE + natsd.node_offset(node.name)


def test_static_nodes_route_over_tls_and_the_ports_speak_tls_only(nodes, authority):
    ca = authority("cluster-ca")
    names = _names(2)
    a, b = nodes(names, ca, discovery_strategy="static", static={"seeds": names})
    wait_until(lambda: all(len(n.broker.cluster.running_nodes()) == 2 for n in (a, b)),
               timeout=30, what="both nodes see each other over TLS routes")
    _routes(a, b)
    _routes(b, a)
    # the route port speaks TLS only: a plaintext route is refused
    _route_port_speaks_tls_only(_cluster_port(a), ca, "probe@127.0.0.1")
    # the client port is on loopback: no TLS there (the node's own connection)
    assert not _info(a.broker.cluster_nats.client_port).get("tls_required")
    # the join port speaks TLS only: a request without TLS is refused at once
    started = time.monotonic()
    assert _ask(b, a) == f"{{tls_required,'{a.name}'}}"
    assert time.monotonic() - started < 3


def _served_serial(port: int, ca: Authority) -> int:
    """The serial number of the certificate a node's TLS port shows (to a client of the
    cluster's CA with a certificate of its own)."""
    rpc = ca.rpc("tester@127.0.0.1")
    ctx = ssl.create_default_context(cafile=rpc["cacertfile"])
    ctx.load_cert_chain(rpc["certfile"], rpc["keyfile"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                         server_hostname="127.0.0.1") as s:
        der = s.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def test_new_certificate_files_are_used_without_a_restart(nodes, authority, monkeypatch):
    """rpc.certfile/keyfile replaced on disk (a renewal): within a check (RELOAD_EVERY) the
    node's route port and join listener show the new certificate, and the nodes still
    route to each other; files that do not load leave the old certificate in use."""
    monkeypatch.setattr(tls, "RELOAD_EVERY", 0.2)
    ca = authority("cluster-ca")
    names = _names(2)
    a, b = nodes(names, ca, discovery_strategy="static", static={"seeds": names})
    wait_until(lambda: all(len(n.broker.cluster.running_nodes()) == 2 for n in (a, b)),
               timeout=30, what="both nodes see each other over TLS routes")
    ports = [_cluster_port(a), join_address(a.name)[1]]
    before = [_served_serial(port, ca) for port in ports]
    assert before[0] == before[1]
    certfile = Path(ca.rpc(a.name)["certfile"])  # a new key and certificate, same files
    wait_until(lambda: all(_served_serial(port, ca) != before[0] for port in ports),
               timeout=15, what="the new certificate on the route port and the join port")
    renewed = _served_serial(ports[0], ca)
    _routes(a, b)
    _routes(b, a)
    certfile.write_text("not a certificate")
    time.sleep(1)  # (several checks)
    assert [_served_serial(port, ca) for port in ports] == [renewed, renewed]


def test_a_public_client_port_takes_tls_clients_only(nodes, authority):
    ca = authority("cluster-ca")
    names = _names(2)
    a, b = nodes(names, ca, discovery_strategy="static", static={"seeds": names},
                 nats={"host": "0.0.0.0"})
    wait_until(lambda: all(len(n.broker.cluster.running_nodes()) == 2 for n in (a, b)),
               timeout=30, what="both nodes see each other")
    server = a.broker.cluster_nats
    assert server.client_url.startswith("tls://")
    info = _info(server.client_port)
    assert info["tls_required"] is True and info["tls_verify"] is True
    _routes(a, b)


def test_a_node_of_another_ca_or_without_tls_is_refused(nodes, authority, caplog):
    names = _names(3)
    good, rogue = authority("cluster-ca"), authority("rogue-ca")
    (a,) = nodes(names[:1], good, discovery_strategy="static", static={"seeds": names})
    (b,) = nodes(names[1:2], rogue, discovery_strategy="static", static={"seeds": names})
    with caplog.at_level(logging.WARNING, logger="emqpy.cluster"):
        (c,) = nodes(names[2:], None, discovery_strategy="static", static={"seeds": names})

        def said(node: Node, words: str) -> bool:
            return any(f"cannot route to {node.name}" in r.getMessage() and words in r.getMessage()
                       for r in caplog.records)
        # each node says in its log why it cannot route to the others (NATS's logs aside)
        wait_until(lambda: (said(a, "requires TLS") and said(b, "requires TLS")
                            and said(c, "does not speak TLS")
                            and said(b, "certificate this node does not accept")
                            and said(a, "certificate this node does not accept")),
                   timeout=30, what="the nodes report why they cannot route to each other")
    time.sleep(2)  # heartbeats are sent every second: none crossed
    for n in (a, b, c):
        assert n.broker.cluster.running_nodes() == [n.name]
    # a's NATS refused b's route for its certificate, and c's for speaking without TLS
    log = (a.data_dir / "log" / "nats-server.log").read_text()
    part = b.name.partition("@")[0]
    assert f"certificate signed by unknown authority (CN={part}" in log, log[-3000:]
    assert "first record does not look like a TLS handshake" in log, log[-3000:]


def test_manual_invite_over_the_tls_join_listener(nodes, authority):
    good, rogue = authority("cluster-ca"), authority("rogue-ca")
    names = _names(4)
    a, b = nodes(names[:2], good)
    (r,) = nodes(names[2:3], rogue)
    (p,) = nodes(names[3:], None)
    assert a.ok("PUT", f"/cluster/{b.name}/invite", json={"timeout": 15000}) is None
    assert sorted(a.get("/cluster")["nodes"]) == sorted([a.name, b.name])
    _routes(a, b)
    _route_port_speaks_tls_only(_cluster_port(b), good, "probe@127.0.0.1")

    def refused(inviter: Node, invited: Node) -> str:
        resp = inviter.api.put(f"/cluster/{invited.name}/invite", json={"timeout": 5000})
        assert resp.status_code == 400, resp.text
        return resp.json()["message"]

    # a node whose certificate is of another CA: the TLS handshake fails, both ways
    assert refused(a, r) == f"{{tls_handshake_failed,'{r.name}'}}"
    assert refused(r, a) == f"{{tls_handshake_failed,'{a.name}'}}"
    # a node without TLS: refused at once, whichever side it is on
    assert refused(p, a) == f"{{tls_required,'{a.name}'}}"
    assert refused(a, p) == f"{{tls_handshake_failed,'{p.name}'}}"
    for n in (r, p):
        assert n.broker.cluster is None
    assert sorted(a.get("/cluster")["nodes"]) == sorted([a.name, b.name])
    # with the cluster's CA, a client of the join port that shows no certificate is refused
    no_cert = ssl.create_default_context(cafile=str(good.ca_file))
    assert _ask(p, a, no_cert) == f"{{tls_handshake_failed,'{a.name}'}}"
    # with a certificate of the cluster's CA, the join port answers (the cookie decides)
    rpc = good.rpc(p.name)
    ours = ssl.create_default_context(cafile=rpc["cacertfile"])
    ours.load_cert_chain(rpc["certfile"], rpc["keyfile"])
    assert _ask(p, a, ours, {"op": "nothing"}) == "unknown request 'nothing'"


@pytest.fixture
def external_nats(authority, tmp_path):
    """A nats-server standing for an existing NATS: TLS on its client port (client certificates
    of its own CA required) and a token; (server, the CA's files for a client)."""
    ca = authority("nats-ca")
    rpc = ca.rpc("nats@127.0.0.1")
    (offset,) = _offsets(1)
    server = natsd.NatsServer(
        node_name="external", cluster_name="ext", host="127.0.0.1",
        client_port=natsd.CLIENT_PORT_BASE + offset, cluster_port=0, routes=[],
        store_dir=tmp_path / "nats", log_file=tmp_path / "nats.log", cookie="natscookie",
        client_tls=(f'cert_file: "{rpc["certfile"]}", key_file: "{rpc["keyfile"]}", '
                    f'ca_file: "{rpc["cacertfile"]}", verify: true'))
    server.start()
    yield server, rpc
    server.stop()  # after the nodes (set up later, stopped first)


def test_an_external_nats_over_tls_with_credentials(external_nats, nodes):
    """cluster.nats.servers with a tls:// URL carrying a token, and cluster.nats.tls: the node
    connects over TLS with its certificate (the server verifies it) and routes through it."""
    server, rpc = external_nats
    assert server.connect_url.startswith("tls://")
    assert _info(server.client_port)["tls_verify"] is True
    client_tls = {"enable": True, "cacertfile": rpc["cacertfile"],
                  "certfile": rpc["certfile"], "keyfile": rpc["keyfile"]}
    a, b = nodes(_names(2), None, nats={"servers": [server.connect_url], "tls": client_tls})
    assert a.broker.cluster_nats is None  # no embedded server
    wait_until(lambda: all(len(n.broker.cluster.running_nodes()) == 2 for n in (a, b)),
               timeout=30, what="both nodes meet through the external NATS")
    _routes(a, b)


def test_a_refused_tls_handshake_with_nats_stops_the_start_at_once(external_nats, authority,
                                                                    make_mqtt_broker):
    """A node whose CA does not know the NATS server's certificate (nats-py would retry it
    for ever): its start fails within seconds, saying the TLS handshake failed, and nothing
    of it keeps running."""
    server, _ = external_nats
    other = authority("other-ca").rpc("x@127.0.0.1")
    (name,) = _names(1)
    conf = _conf(name, nats={"servers": [server.connect_url], "tls": {
        "enable": True, "cacertfile": other["cacertfile"], "certfile": other["certfile"],
        "keyfile": other["keyfile"]}})
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"cannot connect to NATS at .*TLS handshake failed"):
        make_mqtt_broker(conf)
    assert time.monotonic() - t0 < 15


def test_unusable_tls_files_stop_the_start_with_the_key_named(make_mqtt_broker, tmp_path):
    from emqpy.config import validate_config
    (name,) = _names(1)
    conf = _conf(name)
    conf["rpc"] = {"protocol": "ssl", "certfile": str(tmp_path / "none.pem"),
                   "keyfile": str(tmp_path / "none.key"), "cacertfile": str(tmp_path / "ca.pem")}
    with pytest.raises(tls.TlsError, match=r"^rpc\.certfile: no such file"):
        tls.server_context(validate_config(conf))
    conf = _conf(name, nats={"servers": ["tls://127.0.0.1:1"],
                             "tls": {"enable": True, "cacertfile": str(tmp_path / "ca.pem")}})
    with pytest.raises(tls.TlsError, match=r"^cluster\.nats\.tls\.cacertfile: cannot load"):
        tls.external_context(validate_config(conf))


def test_process_workers_siblings_use_tls_to_a_public_nats_port(authority, tmp_path):
    """node.process_workers with rpc.protocol = ssl and the main's NATS client port on all
    interfaces: that port takes TLS clients only, and the sibling connects to it with the
    cluster's certificate."""
    rpc = authority("cluster-ca").rpc(MAIN)
    w = Workers(tmp_path, extra_conf=(
        'cluster.nats.host = "0.0.0.0"\n'
        f'rpc {{ protocol = ssl, certfile = "{rpc["certfile"]}", keyfile = "{rpc["keyfile"]}", '
        f'cacertfile = "{rpc["cacertfile"]}" }}\n'))
    try:
        wait_port(w.api_port, w.proc, seconds=30)
        wait_until(lambda: w.running() == sorted([MAIN, SIBLING]), timeout=30,
                   what="the main process and its sibling both running over TLS")
        nats_conf = (tmp_path / "data" / "nats" / "emqpy-auth.conf").read_text()
        assert nats_conf.count("tls {") == 1 and "verify: true" in nats_conf  # client port
    finally:
        w.close()
