"""The delivery process: where HTTP actions make their requests, out of the broker's process.

Why: aiohttp spends ~100-150 µs of Python per request. In a thread of the broker's process
(emqpy/bridge/ioloop.py) that time is taken under the broker's GIL, so an action sending a few
thousand requests/s halved the broker's own MQTT throughput (bench/README.md). Here the broker's
loop only appends records to the action's disk buffer and hands each lane's next records (bytes
it already holds) to this process over a socket pair; the process runs the requests with its
own HTTP client and sends the outcomes back, one message per loop iteration.

Acknowledgement stays in the broker: a record leaves the disk buffer only when its final
outcome came back, so a delivery process that dies loses nothing: the broker starts a new one
and hands it everything that was out (at least once). The process ends when its socket closes
(the broker stopped, or was killed).

Messages are pickled lists, framed `[u32 length][pickle]`; all of them travel between this
package's two ends only. Broker -> process: `("open", wid, spec)`, `("batch", wid, lane,
[(seq, record), ...])`, `("close", wid)`. Process -> broker: `("results", wid, [(lane, seq,
counter, final, reason), ...])`, `("closed", wid)`, `("log", level, text)`.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("emqpy.bridge")

_LEN = struct.Struct("<I")
_CLOSE_TIMEOUT = 10.0  # how long `close` waits for the process to stop an action's deliveries
_RESPAWN_DELAY = 1.0  # after the process died, before its actions are handed to a new one


class _Frames(asyncio.Protocol):
    """Either end of the socket: what `send` is given in one loop iteration goes as one frame;
    `on_message` gets each message received."""

    def __init__(self, on_message, on_lost):
        self.on_message = on_message
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._out: list = []
        self._scheduled = False
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self._out:
            self._flush()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if end - pos - 4 < n:
                break
            messages = pickle.loads(bytes(buf[pos + 4:pos + 4 + n]))
            pos += 4 + n
            for m in messages:
                self.on_message(m)
        del buf[:pos]

    def send(self, message) -> None:
        self._out.append(message)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self.transport is None or self.closed:  # not connected yet: kept until it is
            return
        out, self._out = self._out, []
        if out:
            data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
            self.transport.write(_LEN.pack(len(data)) + data)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.on_lost()


# -- the broker's end ------------------------------------------------------------------------

class DeliveryProcess:
    """The child process and the broker's end of its socket (used from the broker's loop).
    It is started when the first action needs it and stopped with the bridge feature."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.frames: _Frames | None = None
        self.links: dict[int, ProcessLink] = {}
        self._ids = itertools.count(1)
        self._stopping = False

    def link(self, spec: tuple, send_timeout: float) -> "ProcessLink":
        """The sending side of one action: `spec` is what the process builds its client
        from, `(connector type, connector name, connector config, action parameters, data
        dir, node name)`."""
        return ProcessLink(self, spec, send_timeout)

    def _ensure(self) -> _Frames:
        if self.frames is not None and not self.frames.closed:
            return self.frames
        parent, child = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])  # the emqpy this broker runs
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "emqpy.bridge.process", str(child.fileno())],
                pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL)  # its log comes over the socket
        finally:
            child.close()
        self.frames = _Frames(self._on_message, self._on_lost)
        loop = asyncio.get_running_loop()
        frames = self.frames
        loop.create_task(loop.connect_accepted_socket(lambda: frames, parent))
        return frames

    def send(self, message) -> None:
        self._ensure().send(message)

    def _on_message(self, m) -> None:
        kind = m[0]
        if kind == "results":
            link = self.links.get(m[1])
            if link is not None and link.worker is not None:
                link.worker.on_results(m[2])
        elif kind == "closed":
            link = self.links.pop(m[1], None)
            if link is not None and link.closed is not None and not link.closed.done():
                link.closed.set_result(None)
        elif kind == "log":
            log.log(m[1], "%s", m[2])

    def _on_lost(self) -> None:
        proc, self.proc = self.proc, None
        links, self.links = self.links, {}
        for link in links.values():
            link.lost = True
            if link.closed is not None and not link.closed.done():
                link.closed.set_result(None)
        if proc is not None:
            asyncio.get_running_loop().run_in_executor(None, _reap, proc)
        if self._stopping:
            return
        log.error("the delivery process of the HTTP actions exited: its actions send again "
                  "what was out, from a new one")
        loop = asyncio.get_running_loop()
        for link in links.values():
            if link.worker is not None:
                loop.call_later(_RESPAWN_DELAY, lambda w=link.worker: loop.create_task(
                    w.relaunch()))

    async def stop(self) -> None:
        """End the process (closing its socket ends it) and wait for it."""
        self._stopping = True
        frames, proc = self.frames, self.proc
        self.frames = None
        if frames is not None and frames.transport is not None:
            frames.transport.close()
        if proc is not None:
            await asyncio.to_thread(_reap, proc)
            self.proc = None


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(_CLOSE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ProcessLink:
    """One action's sending side in the delivery process (what `Worker` calls)."""

    def __init__(self, process: DeliveryProcess, spec: tuple, send_timeout: float):
        self.process = process
        self.spec = spec
        self.send_timeout = send_timeout
        self.wid = 0
        self.worker = None
        self.closed: asyncio.Future | None = None
        self.lost = False

    def open(self, worker, lanes: int, ttl: float, resume_interval: float) -> None:
        self.worker = worker
        self.wid = next(self.process._ids)
        self.closed, self.lost = None, False
        self.process.links[self.wid] = self
        self.process.send(("open", self.wid, (*self.spec, worker.name, lanes,
                                              self.send_timeout, ttl, resume_interval)))

    def deliver(self, i: int, batch: list) -> None:
        if not self.lost:
            self.process.frames.send(("batch", self.wid, i, batch))

    async def close(self) -> None:
        """Stop the action's deliveries in the process; outcomes reported before are taken."""
        if self.worker is None:
            return
        if not self.lost and self.process.frames is not None:
            self.closed = asyncio.get_running_loop().create_future()
            self.process.send(("close", self.wid))
            try:
                await asyncio.wait_for(self.closed, _CLOSE_TIMEOUT)
            except asyncio.TimeoutError:
                log.error("%s: the delivery process did not stop its deliveries",
                          self.worker.name)
        self.process.links.pop(self.wid, None)
        self.worker = None


# -- the process's end -----------------------------------------------------------------------

class _LogForward(logging.Handler):
    """The process's log records go to the broker's log."""

    def __init__(self, frames: _Frames):
        super().__init__()
        self.frames = frames

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.frames.send(("log", record.levelno, self.format(record)))
        except Exception:  # logging must never break a delivery
            pass


class _Child:
    def __init__(self):
        self.frames = _Frames(self._on_message, self._on_lost)
        self.done = asyncio.get_running_loop().create_future()
        self.deliveries: dict[int, tuple] = {}  # wid -> (Delivery, connector key)
        self.connectors: dict[bytes, list] = {}  # key -> [connector, users]
        self._results: dict[int, list] = {}
        self._flush_scheduled = False

    def _on_lost(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def _on_message(self, m) -> None:
        kind = m[0]
        if kind == "batch":
            entry = self.deliveries.get(m[1])
            if entry is not None:
                entry[0].deliver_batch(m[2], m[3])
        elif kind == "open":
            self._open(m[1], *m[2])
        elif kind == "close":
            asyncio.get_running_loop().create_task(self._close(m[1]))

    def _open(self, wid, ctype, cname, cfg, params, data_dir, node, name, lanes,
              send_timeout, ttl, resume_interval) -> None:
        from .delivery import RETRY, Delivery
        from .http import HttpConnector

        key = pickle.dumps((ctype, cname, cfg))
        entry = self.connectors.get(key)
        try:
            if entry is None:
                connector = {"http": HttpConnector}[ctype](cfg, Path(data_dir), cname, node)
                connector.open()
                entry = self.connectors[key] = [connector, 0]
            send = entry[0].action(params).send
            entry[1] += 1
        except Exception as e:  # the broker built the same config: retried, never lost
            log.exception("%s: cannot build the action's client", name)
            reason, key = str(e), None

            async def send(selected, envelope, timeout):
                return RETRY, reason

        def report(*result, wid=wid):
            self._results.setdefault(wid, []).append(result)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_results)

        delivery = Delivery(name, send, report, lanes=lanes, send_timeout=send_timeout,
                            ttl=ttl, resume_interval=resume_interval)
        self.deliveries[wid] = (delivery, key)

    def _flush_results(self) -> None:
        self._flush_scheduled = False
        results, self._results = self._results, {}
        for wid, batch in results.items():
            self.frames.send(("results", wid, batch))

    async def _close(self, wid: int) -> None:
        entry = self.deliveries.pop(wid, None)
        if entry is not None:
            delivery, key = entry
            await delivery.cancel()
            users = self.connectors.get(key)
            if users is not None:
                users[1] -= 1
                if users[1] <= 0:
                    del self.connectors[key]
                    await users[0].stop()
        self._flush_results()
        self.frames.send(("closed", wid))

    async def shutdown(self) -> None:
        for delivery, _ in self.deliveries.values():
            await delivery.cancel()
        for connector, _ in self.connectors.values():
            await connector.stop()


async def _serve(fd: int) -> None:
    child = _Child()
    handler = _LogForward(child.frames)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("emqpy")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    sock = socket.socket(fileno=fd)
    await asyncio.get_running_loop().connect_accepted_socket(lambda: child.frames, sock)
    await child.done
    await child.shutdown()


def main() -> None:
    fd = int(sys.argv[1])
    try:
        import uvloop
        uvloop.run(_serve(fd))
    except ImportError:
        asyncio.run(_serve(fd))


if __name__ == "__main__":
    main()
