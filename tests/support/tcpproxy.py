"""A TCP proxy a test controls, to break the network between two programs and mend it:
`cut()` closes every connection through it and refuses new ones (as a link that went down
and a peer that cannot be reached), `stall()` keeps the connections but moves no byte in either
direction (as a network that silently drops packets: neither side is told), and `heal()` lets
everything through again (what a stall held back arrives then)."""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Listens on 127.0.0.1:`port` (0: any free port, see `.port`) and relays each accepted
    connection to 127.0.0.1:`target`, in threads of its own."""

    def __init__(self, port: int, target: int):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.flowing = threading.Event()  # cleared while stalled
        self.flowing.set()
        self.accepted = 0  # connections relayed since start
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"proxy-{self.port}")
        self._thread.start()

    def cut(self) -> None:
        """Close every relayed connection; refuse new ones until `heal`."""
        with self._lock:
            self.open = False
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            _close(*pair)

    def stall(self) -> None:
        """Relay nothing, close nothing (new connections are accepted and stall too)."""
        self.flowing.clear()

    def heal(self) -> None:
        with self._lock:
            self.open = True
        self.flowing.set()

    def close(self) -> None:
        self.cut()
        self.flowing.set()
        self.listener.close()  # ends the accept loop
        self._thread.join(5)

    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def _accept(self) -> None:
        while True:
            try:
                inside, _ = self.listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                refused = not self.open
            if refused:
                _close(inside)
                continue
            try:
                outside = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                outside.settimeout(None)
            except OSError:
                _close(inside)
                continue
            pair = (inside, outside)
            with self._lock:
                if not self.open:  # cut while connecting
                    _close(*pair)
                    continue
                self._pairs.add(pair)
                self.accepted += 1
            for src, dst in (pair, pair[::-1]):
                threading.Thread(target=self._relay, args=(src, dst, pair), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket, pair) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        _close(*pair)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
