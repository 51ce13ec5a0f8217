"""The QoS 0 fan-out loop alone: nanoseconds per subscriber of Broker.publish for one QoS 0
message to N connected MQTT 3.1.1 subscribers (no sockets: channels over a null transport on
a broker that was never started; output is flushed between rounds, outside the timing).

    python bench/fanout_loop.py [--subscribers 1000] [--inline-write-as-call]

--inline-write-as-call replaces the fan-out's inlined Output.write by a call to it, to see
what the inlining saves (see emqpy/broker/output.py).
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from emqpy.broker import broker as broker_module  # noqa: E402
from emqpy.broker.broker import Broker  # noqa: E402
from emqpy.broker.channel import Channel  # noqa: E402
from emqpy.broker.deadlines import DeadlineWheel  # noqa: E402
from emqpy.broker.message import Message  # noqa: E402
from emqpy.listeners.tcp import TcpListener  # noqa: E402
from emqpy.mqtt.packets import Connect, Publish, SubOpts, Subscribe  # noqa: E402


class NullTransport(asyncio.Transport):
    def write(self, data) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default


def _call_write_instead() -> None:
    src = textwrap.dedent(inspect.getsource(Broker.fanout_qos0))
    start, end = src.index("        queued = ch.queued"), src.index("        n += 1")
    src = src[:start] + "        ch.write(w, publisher)\n" + src[end:]
    scope: dict = {}
    exec(compile(src, "fanout_with_call", "exec"), broker_module.__dict__, scope)
    Broker.fanout_qos0 = scope["fanout_qos0"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--inline-write-as-call", action="store_true")
    args = ap.parse_args()
    if args.inline_write_as_call:
        _call_write_instead()
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as data_dir:
        broker = Broker(data_dir=data_dir)
        broker.loop, broker.deadlines = loop, DeadlineWheel(loop)
        listener = TcpListener(broker, "default", broker.config.listeners.tcp["default"])
        channels = []
        for i in range(args.subscribers + 1):
            ch = Channel(broker, listener)
            ch.connection_made(NullTransport())
            ch.data_received(Connect(clientid=f"c{i}", proto_ver=4).encode(4))
            if i < args.subscribers:
                ch.data_received(Subscribe(1, [("t", SubOpts(0))]).encode(4))
            channels.append(ch)
        broker.flush()
        publisher = channels[-1]
        body = Publish("t", b"x" * 32).encode(4)[2:]
        best = float("inf")
        for _ in range(15):
            msgs = []
            for _ in range(50):
                m = Message("t", b"x" * 32, 0, False, None, "c", None, None)
                m.raw_body, m.raw_v5 = body, False
                msgs.append(m)
            t0 = time.perf_counter()
            for m in msgs:
                broker.publish(m, publisher)
            best = min(best, (time.perf_counter() - t0) / len(msgs) / args.subscribers)
            broker.flush()
        loop.close()
    print(f"{best * 1e9:.1f} ns per subscriber")


if __name__ == "__main__":
    main()
