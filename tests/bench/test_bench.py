"""The load tool and the comparison script run and report well-formed results on tiny loads.

Nothing here asserts speed: counts only (every message published with QoS 1/2 must arrive).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from emqpy.bench import main as bench_main
from emqpy.bench import mqtt
from emqpy.bench.hist import NBUCKETS, bucket, bucket_value, percentiles
from support.servers import free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if os.path.exists("/usr/sbin/mosquitto") else None)
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _load_compare():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_compare",
                                                  os.path.join(ROOT, "bench", "compare.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_compare"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def mosq():
    """Mosquitto with plain TCP, WebSocket and TLS listeners on free loopback ports."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed")
    d = tempfile.mkdtemp(prefix="bench-mosq-")
    os.chmod(d, 0o755)  # mosquitto reads the certificates after dropping root
    certs = _load_compare().make_certs(d)
    ports = {"tcp": free_port(), "ws": free_port(), "tls": free_port()}
    conf = os.path.join(d, "m.conf")
    with open(conf, "w") as f:
        f.write(f"per_listener_settings false\nallow_anonymous true\npersistence false\n"
                f"listener {ports['tcp']} 127.0.0.1\n"
                f"listener {ports['ws']} 127.0.0.1\nprotocol websockets\n"
                f"listener {ports['tls']} 127.0.0.1\ncafile {certs['ca']}\n"
                f"certfile {certs['cert']}\nkeyfile {certs['key']}\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for port in ports.values():
            wait_port(port, proc, seconds=5)
    except RuntimeError:
        proc.kill()
        raise
    yield dict(ports, ca=certs["ca"])
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def mosquitto(mosq):
    return mosq["tcp"]


# -- pure pieces ------------------------------------------------------------------------------
def test_histogram_buckets_are_monotonic_and_precise():
    prev = -1
    for us in list(range(0, 5000)) + [10**k + j for k in range(4, 9) for j in (0, 1, 777)]:
        b = bucket(us)
        assert 0 <= b < NBUCKETS and b >= prev
        prev = b
        if us >= 1:
            assert abs(bucket_value(b) - us) <= max(1.0, us * 0.016), us


def test_percentiles_of_known_distribution():
    counts = [0] * NBUCKETS
    for us in range(1, 10001):  # uniform 1..10,000 µs
        counts[bucket(us)] += 1
    p = percentiles(counts, (50, 99))
    assert p["count"] == 10000
    assert abs(p["p50"] - 5000) < 5000 * 0.02
    assert abs(p["p99"] - 9900) < 9900 * 0.02
    assert abs(p["max"] - 10000) < 10000 * 0.02
    assert percentiles([0] * NBUCKETS)["p50"] is None


def test_scanner_handles_frames_split_anywhere():
    """Feed PUBLISH/PUBREL frames (incl. a multi-byte remaining length) one byte at a time."""
    import multiprocessing as mp
    from emqpy.bench.spec import ACKED, NFIELDS, RECV, Group, Spec
    from emqpy.bench.worker import Worker

    spec = Spec([Group("sub", 1, topic="t", qos=1, latency=True)], version=5)
    w = Worker(0, 1, spec, mp.RawArray("q", NFIELDS), mp.RawArray("q", NBUCKETS),
               mp.RawArray("q", 4))
    c = w.clients[0]
    written = []

    class T:
        def write(self, b):
            written.append(bytes(b))

        def is_closing(self):
            return False

    c.transport = T()
    now = time.time_ns() // 1000
    big = mqtt.PublishTemplate("a/b", 300, qos=1, version=5)  # remaining length > 127
    mqtt.PID.pack_into(big.buf, big.pid_off, 7)
    mqtt.TS.pack_into(big.buf, big.ts_off, now - 2000)
    small = mqtt.PublishTemplate("c", 8, qos=0, version=5)
    mqtt.TS.pack_into(small.buf, small.ts_off, now - 1000)
    stream = bytes(big.buf) + bytes(small.buf) + mqtt.ack(mqtt.PUBREL, 9) + \
        mqtt.ack(mqtt.PUBACK, 3)
    for i in range(len(stream)):
        mv = c.get_buffer(-1)
        mv[0] = stream[i]
        c.buffer_updated(1)
    assert w.stats[RECV] == 2 and w.stats[ACKED] == 1
    assert written == [b"\x40\x02\x00\x07", b"\x70\x02\x00\x09"]
    p = percentiles(w.lat)
    assert p["count"] == 2 and 500 < p["p50"] < 60_000_000


def test_connect_encoding_versions():
    assert mqtt.connect("c", 3)[:12] == b"\x10\x0f\x00\x06MQIsdp\x03\x02"
    v5 = mqtt.connect("cid", 5, 60, True, "u", "p")
    assert v5[0] == 0x10 and v5[2:9] == b"\x00\x04MQTT\x05" and v5[9] == 0xC2
    assert mqtt.varint(321) == b"\xc1\x02"


def test_cli_usage_errors():
    assert bench_main(["nope"]) == 2
    assert bench_main(["pub"]) == 2  # -t is required
    assert bench_main(["conn", "--duration", "0"]) == 2
    assert bench_main([]) == 2


# -- against real brokers ---------------------------------------------------------------------
def _conn(port, tmp_path, n=5, extra=()):
    out = tmp_path / "conn.json"
    rc = bench_main(["conn", "-h", "127.0.0.1", "-p", str(port), "-c", str(n), "-i", "0",
                     "--workers", "2", "--duration", "0.5", "--quiet", "--json", str(out),
                     *extra])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["connacks"] == n and res["conn_fail"] == 0 and res["errors"] == 0
    assert res["conn_rate"] > 0


def _sub_pub(port, tmp_path, qos, version):
    """`sub` in a subprocess, `pub` in-process with a per-client limit: all must arrive."""
    sub_json = tmp_path / f"sub{qos}.json"
    sub = subprocess.Popen(
        [sys.executable, "-m", "emqpy.bench", "sub", "-h", "127.0.0.1", "-p", str(port),
         "-c", "2", "-i", "0", "-t", f"bt{qos}/%i", "-q", str(qos), "-V", str(version),
         "--workers", "1", "--duration", "6", "--json", str(sub_json)],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # progress lines arrive once a second; wait until both subscriptions are acknowledged
        deadline = time.time() + 5
        line = ""
        while time.time() < deadline and " sub 2 " not in line:
            line = sub.stderr.readline()
        assert " sub 2 " in line, line
        pub_json = tmp_path / f"pub{qos}.json"
        rc = bench_main(["pub", "-h", "127.0.0.1", "-p", str(port), "-c", "2", "-i", "0",
                         "-t", f"bt{qos}/%i", "-q", str(qos), "-V", str(version), "-s", "32",
                         "-I", "0", "-F", "5", "-L", "200", "--workers", "2", "--duration", "5",
                         "--quiet", "--json", str(pub_json)])
        assert rc == 0
        pub = json.loads(pub_json.read_text())
        assert pub["sent"] == 400 and pub["acked"] == (400 if qos else 0)
        assert pub["pub_done"] == 2 and pub["errors"] == 0
        out, err = sub.communicate(timeout=15)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0, err
    res = json.loads(sub_json.read_text())
    assert res["received"] == 400 and res["subscribed"] == 2
    assert res["latency_us"]["count"] == 400 and res["latency_us"]["p50"] > 0
    assert "received 400" in out and "latency p50" in out
    # progress lines: one a second with totals and error count
    assert re.search(r"\[\s*\d+\.\ds\] \| conn 2/2 .* \| err 0", err)


def test_conn_mosquitto(mosquitto, tmp_path):
    _conn(mosquitto, tmp_path)


def test_sub_pub_qos2_mosquitto(mosquitto, tmp_path):
    _sub_pub(mosquitto, tmp_path, qos=2, version=4)


def test_pub_qos0_rate_and_topic_cycle(mosquitto, tmp_path):
    out = tmp_path / "p.json"
    rc = bench_main(["pub", "-h", "127.0.0.1", "-p", str(mosquitto), "-c", "3", "-i", "0",
                     "-t", "cyc/%i/%m", "--topic-cycle", "7", "-I", "10", "-L", "5",
                     "-V", "3", "--workers", "1", "--duration", "5", "--quiet",
                     "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["sent"] == 15 and res["pub_done"] == 3


def test_websocket_mosquitto(mosq, tmp_path):
    pytest.importorskip("wsproto")
    _conn(mosq["ws"], tmp_path, extra=["--ws"])
    out = tmp_path / "ws.json"
    assert bench_main(["pub", "--ws", "-h", "127.0.0.1", "-p", str(mosq["ws"]), "-c", "2",
                       "-i", "0", "-t", "ws/%i", "-q", "1", "-I", "0", "-L", "20",
                       "--workers", "1", "--duration", "5", "--quiet", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["sent"] == 40 and res["acked"] == 40


def test_tls_mosquitto(mosq, tmp_path):
    _conn(mosq["tls"], tmp_path, extra=["--ssl", "--cacertfile", mosq["ca"]])
    # without the CA the broker's certificate is not trusted: every connection fails
    out = tmp_path / "bad.json"
    rc = bench_main(["conn", "--ssl", "-h", "127.0.0.1", "-p", str(mosq["tls"]), "-c", "2",
                     "-i", "0", "--workers", "1", "--duration", "0.5", "--quiet",
                     "--json", str(out)])
    assert rc == 1 and json.loads(out.read_text())["conn_fail"] == 2
    _conn(mosq["tls"], tmp_path, n=2, extra=["--ssl", "--insecure"])


try:
    import emqpy.testing  # noqa: F401
    HAVE_EMQPY = True
except ImportError:
    HAVE_EMQPY = False

needs_emqpy = pytest.mark.skipif(not HAVE_EMQPY, reason="emqpy.testing not available")


@needs_emqpy
def test_conn_emqpy(broker, tmp_path):
    _conn(broker.port, tmp_path)


@needs_emqpy
def test_sub_pub_qos1_v5_emqpy(broker, tmp_path):
    _sub_pub(broker.port, tmp_path, qos=1, version=5)


def test_compare_quick_table(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed")
    out = tmp_path / "cmp.md"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare.py"), "--quick",
                        "--brokers", "mosquitto", "--scenarios", "fanin", "--out", str(out)],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text in r.stdout
    rows = [l for l in text.splitlines() if l.startswith("|")]
    assert rows[0].startswith("| Scenario | Metric | Mosquitto |")
    ncols = rows[0].count("|")
    assert re.fullmatch(r"\|(---\|)+", rows[1]) and rows[1].count("|") == ncols
    assert all(r_.count("|") == ncols for r_ in rows)
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[0].startswith("fan-in QoS 0") and cells[1] == "msg/s delivered"
    assert float(cells[2].replace(",", "")) > 0  # delivered rate
    assert float(cells[3]) > 0 and float(cells[4]) > 0  # broker CPU% and RSS MiB
    assert len(rows) == 3  # just the one scenario
