"""The same transports on the standard asyncio event loop (an embedding program may not use
uvloop): TLS, WebSocket behind a PROXY header, and a refused handshake."""
from __future__ import annotations

import asyncio
import logging
import ssl

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from emqpy.node import Node
from emqpy.testing import TEST_DEFAULTS, _merge

from support.rawmqtt import connect_packet
from support.waiting import WAIT

CONNACK_OK = b"\x20\x02\x00\x00"


async def _scenario(data_dir, caplog):
    cfg = _merge(TEST_DEFAULTS, {"listeners": {"ws": {"default": {"proxy_protocol": True}}}})
    async with Node(cfg, data_dir=data_dir) as b:
        ls = b.listeners
        # TLS with the default certificates
        ctx = ssl.create_default_context(cafile=str(b.data_dir / "certs" / "cacert.pem"))
        r, w = await asyncio.open_connection("127.0.0.1", ls["ssl:default"].port, ssl=ctx,
                                             server_hostname="localhost")
        w.write(connect_packet("aio-tls", version=4))
        assert await r.readexactly(4) == CONNACK_OK
        # WebSocket behind a PROXY v1 header
        r2, w2 = await asyncio.open_connection("127.0.0.1", ls["ws:default"].port)
        ws = WSConnection(ConnectionType.CLIENT)
        w2.write(b"PROXY TCP4 203.0.113.5 192.0.2.1 5555 8083\r\n"
                 + ws.send(Request(host="x", target="/mqtt", subprotocols=["mqtt"])))
        events: list = []

        async def until(kind):
            while not any(isinstance(e, kind) for e in events):
                ws.receive_data(await r2.read(4096))
                events.extend(ws.events())
            return next(e for e in events if isinstance(e, kind))
        await until(AcceptConnection)
        w2.write(ws.send(BytesMessage(data=connect_packet("aio-ws", version=4))))
        msg = await until(BytesMessage)
        assert bytes(msg.data) == CONNACK_OK
        ch = b.channels["aio-ws"]
        assert (ch.peerhost, ch.peerport, ch.listener.id) == ("203.0.113.5", 5555, "ws:default")
        # plaintext on the TLS port: refused and counted, quietly
        r3, w3 = await asyncio.open_connection("127.0.0.1", ls["ssl:default"].port)
        w3.write(connect_packet("plain", version=4))
        assert await r3.read() == b""
        for _ in range(100):
            if ls["ssl:default"].counters["tls_handshake_error"]:
                break
            await asyncio.sleep(0.05)
        assert ls["ssl:default"].counters["tls_handshake_error"] == 1
        for wr in (w, w2, w3):
            wr.close()


def test_standard_asyncio_loop(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    asyncio.run(asyncio.wait_for(_scenario(str(tmp_path), caplog), WAIT * 3))
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith(("asyncio", "emqpy"))]
