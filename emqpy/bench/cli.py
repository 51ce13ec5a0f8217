"""`emqpy bench conn|sub|pub`: command line in the style of EMQX's emqtt_bench."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from .runner import format_summary, run_timed
from .spec import Group, Spec

USAGE = """emqpy bench conn|sub|pub [options]

  conn  open -c connections and hold them
  sub   -c subscribers on -t; reports messages/s and end-to-end latency
  pub   -c publishers on -t, one message every -I ms each (-I 0: as fast as possible)

Every run stops by itself after --duration seconds (or when pub reaches -L per client).
Latency comes from an 8-byte timestamp at the start of each payload written by `emqpy bench pub`
(payloads of -s >= 8 bytes), so sub and pub must run on the same machine or synced clocks.
"""


def _parser(cmd: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"emqpy bench {cmd}", add_help=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("-h", "--host", default="localhost", help="broker host")
    p.add_argument("-p", "--port", type=int, default=None,
                   help="broker port (default 1883, 8883 with --ssl, 8083 with --ws)")
    p.add_argument("-V", "--version", type=int, choices=(3, 4, 5), default=5,
                   help="MQTT version: 3 = 3.1, 4 = 3.1.1, 5 = 5.0")
    p.add_argument("-c", "--count", type=int, default=200, help="number of clients")
    p.add_argument("-n", "--startnumber", type=int, default=0, help="first client sequence number")
    p.add_argument("-i", "--interval", type=float, default=10.0,
                   help="ms between connection starts (0: as fast as possible)")
    p.add_argument("-u", "--username", default=None)
    p.add_argument("-P", "--password", default=None)
    p.add_argument("-k", "--keepalive", type=int, default=300, help="keepalive seconds")
    p.add_argument("-C", "--clean", type=lambda v: v.lower() in ("1", "true", "yes"),
                   default=True, help="clean start (true/false)")
    p.add_argument("--prefix", default="bench", help="client id prefix")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="load-generating processes")
    p.add_argument("--duration", type=float, default=60.0, help="stop after this many seconds")
    p.add_argument("--concurrency", type=int, default=200,
                   help="connection handshakes in progress per worker")
    p.add_argument("-S", "--ssl", action="store_true", help="TLS")
    p.add_argument("--cacertfile", default=None, help="CA to verify the broker with")
    p.add_argument("--certfile", default=None, help="client certificate")
    p.add_argument("--keyfile", default=None, help="client key")
    p.add_argument("--insecure", action="store_true", help="do not verify the broker")
    p.add_argument("--ws", action="store_true", help="MQTT over WebSocket")
    p.add_argument("--ws-path", default="/mqtt", help="WebSocket path")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the summary as JSON to FILE ('-' for stdout)")
    p.add_argument("-q", "--qos", type=int, choices=(0, 1, 2), default=0)
    p.add_argument("--quiet", action="store_true", help="no per-second progress lines")
    if cmd in ("sub", "pub"):
        p.add_argument("-t", "--topic", required=True,
                       help="topic; %%i = client sequence number, %%c = client id")
    if cmd == "sub":
        p.add_argument("--no-latency", dest="latency", action="store_false",
                       help="only count messages, do not read payload timestamps")
    if cmd == "pub":
        p.add_argument("-s", "--size", type=int, default=256, help="payload bytes")
        p.add_argument("-I", "--interval_of_msg", type=float, default=1000.0,
                       help="ms between messages per client (0: as fast as allowed)")
        p.add_argument("-L", "--limit", type=int, default=0, help="messages per client (0: no limit)")
        p.add_argument("-r", "--retain", action="store_true")
        p.add_argument("-F", "--inflight", type=int, default=1,
                       help="unacknowledged QoS 1/2 messages per client")
        p.add_argument("--topic-cycle", type=int, default=0, metavar="N",
                       help="cycle over N topics per client, one per message (%%m in -t, "
                            "else appended as /N)")
    return p


def build_spec(cmd: str, a: argparse.Namespace) -> Spec:
    kw = dict(count=a.count, qos=a.qos, prefix=a.prefix, start_number=a.startnumber)
    if cmd == "conn":
        g = Group("conn", **kw)
    elif cmd == "sub":
        g = Group("sub", topic=a.topic, latency=a.latency, **kw)
    else:
        g = Group("pub", topic=a.topic, size=a.size, interval_ms=a.interval_of_msg,
                  limit=a.limit, inflight=a.inflight, retain=a.retain, topic_cycle=a.topic_cycle,
                  **kw)
    port = a.port or (8083 if a.ws and not a.ssl else 8084 if a.ws else 8883 if a.ssl else 1883)
    return Spec([g], host=a.host, port=port, version=a.version, keepalive=a.keepalive,
                clean=a.clean, username=a.username, password=a.password, workers=a.workers,
                conn_interval_ms=a.interval, conn_concurrency=a.concurrency, ssl=a.ssl,
                cacertfile=a.cacertfile, certfile=a.certfile, keyfile=a.keyfile,
                insecure=a.insecure, ws=a.ws, ws_path=a.ws_path)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("--help", "help", "-help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in ("conn", "sub", "pub"):
        print(f"emqpy bench: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    p = _parser(cmd)
    try:
        a = p.parse_args(rest)
    except SystemExit as e:  # argparse exits on --help (0) and errors (2)
        return int(e.code or 0)
    if a.duration <= 0:
        p.print_usage(sys.stderr)
        print("--duration must be > 0", file=sys.stderr)
        return 2
    try:
        spec = build_spec(cmd, a)
    except ValueError as e:
        print(f"emqpy bench: {e}", file=sys.stderr)
        return 2
    # SIGTERM ends the run as Ctrl-C does: the workers are stopped and the summary printed
    # (killed outright, the parent would leave its worker processes running).
    signal.signal(signal.SIGTERM, _interrupt)
    res = run_timed(spec, a.duration, quiet=a.quiet)
    print(format_summary(res))
    if a.json:
        text = json.dumps(res, indent=2)
        if a.json == "-":
            print(text)
        else:
            with open(a.json, "w") as f:
                f.write(text + "\n")
    failed = res["connacks"] == 0 and spec.total_clients > 0
    return 1 if failed else 0
