"""One load-generating process: many MQTT clients as asyncio BufferedProtocols on one loop.

Hot paths avoid per-message objects: publishers write pre-encoded, batched PUBLISH bytes; the
receive side scans frame headers in a reusable bytearray and only counts, except that latency
mode reads each payload's 8-byte timestamp and QoS 1/2 must echo packet ids.
"""
from __future__ import annotations

import asyncio
import os
import random
import resource
import signal
import socket
import ssl as ssl_mod
import time

from . import mqtt
from .hist import NBUCKETS, bucket
from .spec import (ACKED, CONN_FAIL, CONNACKS, CONNECTED, ERRORS, FIRST_CONN_US, GO,
                   LAST_CONNACK_US, NFIELDS, PUB_DONE, PUB_ERRORS, READY, RECV, SENT, STARTED,
                   STOP, SUB_FAIL, SUBSCRIBED, Group, Spec)

_TS_UNPACK = mqtt.TS.unpack_from


def now_us() -> int:
    return time.time_ns() // 1000


def expand(template: str, seq: int, client_id: str, m: int | None = None) -> str:
    t = template.replace("%i", str(seq)).replace("%c", client_id)
    if m is not None:
        t = t.replace("%m", str(m)) if "%m" in t else f"{t}/{m}"
    return t


class Client(asyncio.BufferedProtocol):
    def __init__(self, w: "Worker", g: Group, seq: int):
        self.w, self.g, self.seq = w, g, seq
        self.client_id = f"{g.prefix}_{g.role}_{seq}"
        self.transport = None
        self.connected = False
        self.closing = False
        bufsize = {"sub": 64 * 1024, "pub": 16 * 1024}.get(g.role, 2048)
        self.buf = bytearray(bufsize)
        self.mv = memoryview(self.buf)
        self.end = 0
        self.lat = w.lat if (g.role == "sub" and g.latency) else None
        self.v5 = w.spec.version == 5
        # publisher state
        self.paused = False
        self.scheduled = False
        self.started = False
        self.done = False
        self.sent = 0
        self.inflight = 0
        self.next_pid = 1
        self.cyc = 0
        if g.role == "pub":
            n = g.topic_cycle
            topics = ([expand(g.topic, seq, self.client_id, m) for m in range(n)] if n
                      else [expand(g.topic, seq, self.client_id)])
            v = w.spec.version
            size = g.size if g.payload is None else 0  # (a fixed payload has no timestamp)
            if g.qos == 0 and g.interval_ms == 0:
                self.chunk = mqtt.PublishChunk(topics, size, v, g.retain, payload=g.payload)
            self.tmpls = [mqtt.PublishTemplate(t, size, g.qos, v, g.retain, g.payload)
                          for t in topics]

    # -- transport callbacks -------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=256 * 1024)
        s = self.w.spec
        transport.write(mqtt.connect(self.client_id, s.version, s.keepalive, s.clean,
                                     s.username, s.password))

    def connection_lost(self, exc):
        self.w.clients_open.discard(self)
        fut = self.w._waiters.pop(self, None)
        if fut is not None and not fut.done():  # closed before CONNACK
            fut.set_exception(ConnectionError("closed before CONNACK"))
        if self.connected:  # (a loss before CONNACK counts as a connection failure)
            self.connected = False
            self.w.stats[self.w.base + CONNECTED] -= 1
            if not self.closing and not self.w.stopping:
                self.w.stats[self.w.base + ERRORS] += 1

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self._kick()

    def get_buffer(self, sizehint):
        if self.end >= len(self.buf):  # one frame larger than the buffer: grow it
            self.mv.release()
            self.buf = self.buf + bytearray(len(self.buf))
            self.mv = memoryview(self.buf)
        return self.mv[self.end:]

    def buffer_updated(self, nbytes):
        buf = self.buf
        end = self.end + nbytes
        i = 0
        recv = 0
        acked = 0
        out = None
        lat = self.lat
        v5 = self.v5
        t_now = now_us() if lat is not None else 0
        while end - i >= 2:
            b0 = buf[i]
            rl = buf[i + 1]
            p = i + 2
            if rl >= 128:
                rl &= 127
                mult = 128
                while True:
                    if p >= end:
                        rl = -1
                        break
                    b = buf[p]
                    p += 1
                    rl += (b & 127) * mult
                    if b < 128:
                        break
                    mult <<= 7
                if rl < 0:
                    break
            nxt = p + rl
            if nxt > end:
                break
            if b0 >> 4 == 3:
                recv += 1
                q = (b0 >> 1) & 3
                if q or lat is not None:
                    pp = p + 2 + ((buf[p] << 8) | buf[p + 1])
                    if q:
                        if out is None:
                            out = bytearray()
                        out += b"\x40\x02" if q == 1 else b"\x50\x02"
                        out += buf[pp:pp + 2]
                        pp += 2
                    if lat is not None:
                        if v5:  # skip the properties
                            plen, mult = 0, 1
                            while True:
                                b = buf[pp]
                                pp += 1
                                plen += (b & 127) * mult
                                if b < 128:
                                    break
                                mult <<= 7
                            pp += plen
                        if pp + 8 <= nxt:
                            lat[bucket(t_now - _TS_UNPACK(buf, pp)[0])] += 1
            else:
                t = b0 >> 4
                if t == 4 or t == 7:  # PUBACK / PUBCOMP ends a QoS 1 / 2 flow
                    acked += 1
                    if rl > 2 and buf[p + 2] >= 0x80:
                        self.w.stats[self.w.base + PUB_ERRORS] += 1
                elif t == 5:  # PUBREC -> PUBREL
                    if out is None:
                        out = bytearray()
                    if rl > 2 and buf[p + 2] >= 0x80:  # refused: the flow ends here
                        acked += 1
                        self.w.stats[self.w.base + PUB_ERRORS] += 1
                    else:
                        out += b"\x62\x02"
                        out += buf[p:p + 2]
                elif t == 6:  # PUBREL -> PUBCOMP
                    if out is None:
                        out = bytearray()
                    out += b"\x70\x02"
                    out += buf[p:p + 2]
                else:
                    self._control(t, buf, p, nxt)
            i = nxt
        if i:
            if i < end:
                buf[0:end - i] = buf[i:end]
            end -= i
        self.end = end
        st, base = self.w.stats, self.w.base
        if recv:
            st[base + RECV] += recv
        if out is not None and self.transport is not None:
            self.transport.write(out)
        if acked:
            st[base + ACKED] += acked
            self.inflight -= acked
            if self.g.interval_ms == 0:
                self._kick()

    def _control(self, t, buf, p, nxt):
        w = self.w
        st, base = w.stats, w.base
        if t == 2:  # CONNACK
            if buf[p + 1] != 0:
                st[base + CONN_FAIL] += 1
                self.closing = True
                w.connack_waiter(self, False)
                self.transport.close()
                return
            self.connected = True
            st[base + CONNACKS] += 1
            st[base + CONNECTED] += 1
            st[base + LAST_CONNACK_US] = now_us()
            w.connack_waiter(self, True)
            g = self.g
            if g.role == "sub":
                topics = g.topics or [expand(g.topic, self.seq, self.client_id)]
                self.transport.write(mqtt.subscribe(1, topics, g.qos, w.spec.version))
            elif g.role == "pub" and w.go:
                self.start_publishing()
        elif t == 9:  # SUBACK
            if buf[nxt - 1] >= 0x80:
                st[base + SUB_FAIL] += 1
            else:
                st[base + SUBSCRIBED] += 1
        elif t == 14:  # server DISCONNECT
            st[base + ERRORS] += 1
            self.closing = True
            self.transport.close()
        # PINGRESP and anything else: nothing to do

    # -- publishing ----------------------------------------------------------------------
    def start_publishing(self):
        if self.started or self.g.role != "pub" or not self.connected:
            return
        self.started = True
        g = self.g
        if g.interval_ms > 0:
            self.iv = g.interval_ms / 1000
            loop = self.w.loop
            self.t0 = loop.time() + random.random() * self.iv  # spread clients over a period
            loop.call_at(self.t0, self._tick)
        else:
            self._kick()

    def _finish(self):
        if not self.done:
            self.done = True
            self.w.stats[self.w.base + PUB_DONE] += 1

    def _kick(self):
        if not self.started or self.scheduled or self.done:
            return
        if self.g.interval_ms == 0:
            self.scheduled = True
            self.w.loop.call_soon(self._fill)

    def _fill(self):
        """Unpaced publishing: as fast as the socket takes (QoS 0) or the in-flight window
        allows (QoS 1/2); yields to the loop after a few writes so clients share it fairly."""
        self.scheduled = False
        w = self.w
        if self.paused or self.done or w.stopping or self.transport is None \
                or self.transport.is_closing():
            return
        g = self.g
        if g.qos:
            n = g.inflight - self.inflight
            if g.limit:
                n = min(n, g.limit - self.sent)
            if n > 0:
                self._send_templates(n)
            if g.limit and self.sent >= g.limit:
                self._finish()
            return
        chunk = self.chunk
        write = self.transport.write
        for _ in range(4):
            if w.window and w.pending() > w.window:
                w.blocked.add(self)
                return
            n = chunk.count
            if g.limit:
                n = min(n, g.limit - self.sent)
            write(chunk.stamped(now_us(), n))
            self.sent += n
            w.stats[w.base + SENT] += n
            if g.limit and self.sent >= g.limit:
                self._finish()
                return
            if self.paused:
                return
        self.scheduled = True
        w.loop.call_soon(self._fill)

    def _send_templates(self, n):
        out = bytearray()
        ts = now_us()
        tmpls = self.tmpls
        ntm = len(tmpls)
        pid_pack = mqtt.PID.pack_into
        ts_pack = mqtt.TS.pack_into
        qos = self.g.qos
        for _ in range(n):
            t = tmpls[self.cyc]
            self.cyc = (self.cyc + 1) % ntm
            if qos:
                pid_pack(t.buf, t.pid_off, self.next_pid)
                self.next_pid = self.next_pid % 65535 + 1
            if t.ts_off >= 0:
                ts_pack(t.buf, t.ts_off, ts)
            out += t.buf
        self.transport.write(out)
        self.sent += n
        if qos:
            self.inflight += n
        self.w.stats[self.w.base + SENT] += n

    def _tick(self):
        """Paced publishing: catch up to the schedule t0 + k * interval."""
        w = self.w
        if self.done or w.stopping or self.transport is None or self.transport.is_closing():
            return
        g = self.g
        now = w.loop.time()
        due = int((now - self.t0) / self.iv) + 1 - self.sent
        if g.limit:
            due = min(due, g.limit - self.sent)
        if g.qos:
            due = min(due, g.inflight - self.inflight)
        if due > 0 and not self.paused:
            self._send_templates(min(due, 1000))
        if g.limit and self.sent >= g.limit:
            self._finish()
            return
        # Never sooner than 1 ms: the loop's timers have millisecond resolution, so a shorter
        # delay fires at once and spins; being late is fine, the catch-up above sends the backlog.
        w.loop.call_at(max(self.t0 + self.sent * self.iv, now + 0.001), self._tick)

    def close(self):
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write(mqtt.DISCONNECT_BYTES)
            except Exception:
                pass
            self.transport.close()


class Worker:
    def __init__(self, idx: int, nworkers: int, spec: Spec, stats, hist, ctrl):
        self.idx, self.nworkers, self.spec = idx, nworkers, spec
        self.stats, self.hist, self.ctrl = stats, hist, ctrl
        self.base = idx * NFIELDS
        self.lat = [0] * NBUCKETS
        self.go = False
        self.window = spec.window
        self.stopping = False
        self.blocked: set[Client] = set()
        self.clients: list[Client] = []
        self.clients_open: set[Client] = set()
        self._waiters: dict[Client, asyncio.Future] = {}
        for k, g, seq in spec.clients():
            if k % nworkers == idx:
                self.clients.append(Client(self, g, seq))

    def pending(self) -> int:
        st = self.stats
        sent = sum(st[SENT::NFIELDS])
        recv = sum(st[RECV::NFIELDS])
        return sent * self.spec.fanout - recv

    def connack_waiter(self, c: Client, ok: bool):
        fut = self._waiters.pop(c, None)
        if fut is not None and not fut.done():
            fut.set_result(ok)

    def _ssl_context(self):
        s = self.spec
        ctx = ssl_mod.create_default_context(cafile=s.cacertfile)
        if s.certfile:
            ctx.load_cert_chain(s.certfile, s.keyfile)
        if s.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl_mod.CERT_NONE
        return ctx

    async def _open(self, c: Client, sem: asyncio.Semaphore, ssl_ctx):
        s = self.spec
        st, base = self.stats, self.base
        fut = self.loop.create_future()
        self._waiters[c] = fut
        try:
            async with asyncio.timeout(s.connect_timeout):  # TCP (+TLS/WS) and CONNACK
                if s.ws:
                    from .ws import open_ws
                    await open_ws(self.loop, c, s, ssl_ctx)
                else:
                    await self.loop.create_connection(
                        lambda: c, s.host, s.port, ssl=ssl_ctx,
                        server_hostname=s.host if ssl_ctx else None)
                self.clients_open.add(c)
                await fut
        except Exception:  # refused, timed out, TLS or WebSocket handshake failure
            if not c.closing:  # an MQTT-level refusal was already counted
                st[base + CONN_FAIL] += 1
            c.closing = True
            if c.transport is not None:
                c.transport.close()
        finally:
            self._waiters.pop(c, None)
            st[base + STARTED] += 1
            sem.release()

    async def _connect_all(self):
        s = self.spec
        ssl_ctx = self._ssl_context() if s.ssl else None
        sem = asyncio.Semaphore(s.conn_concurrency)
        iv = s.conn_interval_ms / 1000 * self.nworkers
        t0 = self.loop.time() + (s.conn_interval_ms / 1000) * self.idx
        self.stats[self.base + FIRST_CONN_US] = now_us()
        tasks = []
        for k, c in enumerate(self.clients):
            if self.ctrl[STOP]:
                break
            if iv:
                delay = t0 + k * iv - self.loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await sem.acquire()
            tasks.append(self.loop.create_task(self._open(c, sem, ssl_ctx)))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _flush_hist(self):
        base = self.idx * NBUCKETS
        self.hist[base:base + NBUCKETS] = self.lat

    async def run(self):
        self.loop = asyncio.get_running_loop()
        self.stats[self.base + READY] = 1
        connector = self.loop.create_task(self._connect_all())
        last_ping = self.loop.time()
        ka = self.spec.keepalive
        while not self.ctrl[STOP]:
            await asyncio.sleep(0.002 if self.blocked else 0.005)
            if not self.go and self.ctrl[GO]:
                self.go = True
                for c in self.clients:
                    c.start_publishing()
            if self.blocked and self.pending() <= self.spec.window:
                blocked, self.blocked = self.blocked, set()
                for c in blocked:
                    c._kick()
            self._flush_hist()
            if ka and self.loop.time() - last_ping > ka * 0.5:
                last_ping = self.loop.time()
                for c in list(self.clients_open):
                    if c.connected and c.transport and not c.transport.is_closing():
                        c.transport.write(mqtt.PINGREQ_BYTES)
        self.stopping = True
        connector.cancel()
        for c in self.clients:
            c.close()
        await asyncio.sleep(0.05)
        self._flush_hist()


def worker_main(idx, nworkers, spec, stats, hist, ctrl):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through ctrl[STOP]
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency where available
        runner = asyncio.run
    runner(Worker(idx, nworkers, spec, stats, hist, ctrl).run())
    os._exit(0)  # skip interpreter teardown of thousands of sockets
