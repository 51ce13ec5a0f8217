"""Splitting a byte stream into MQTT frames, sans I/O.

The remaining length is checked against the maximum packet size as soon as the fixed header is
complete, before any of the body is buffered, so an oversized packet costs no memory.
"""
from __future__ import annotations

from emqpy.mqtt.accel import pick
from emqpy.mqtt.reason_codes import PACKET_TOO_LARGE, MQTTError, malformed


class FrameReader:
    """Also counts the frames it returns, as the connection's packet counters: all of them,
    those other than PUBLISH, and the QoS 1 and QoS 2 PUBLISHes (counting here costs nothing
    per frame in the compiled twin)."""
    __slots__ = ("max_packet_size", "_buf", "n_frames", "n_other", "n_qos1", "n_qos2")

    def __init__(self, max_packet_size: int = 1024 * 1024):
        self.max_packet_size = max_packet_size
        self._buf = b""
        self.n_frames = self.n_other = self.n_qos1 = self.n_qos2 = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Return the complete frames in `data` as (first byte, body); keep the rest.

        Raises MQTTError for a malformed length or a packet over max_packet_size.
        """
        buf = self._buf + data if self._buf else data
        frames = []
        append = frames.append
        pos = 0
        n = len(buf)
        limit = self.max_packet_size
        while n - pos >= 2:
            b1 = buf[pos + 1]
            if b1 < 128:
                length = b1
                hdr = 2
            else:
                length = b1 & 0x7F
                shift = 7
                hdr = 2
                while True:
                    if pos + hdr >= n:
                        self._buf = buf[pos:]
                        return frames
                    b = buf[pos + hdr]
                    hdr += 1
                    length |= (b & 0x7F) << shift
                    if not b & 0x80:
                        break
                    shift += 7
                    if hdr > 4:
                        raise malformed("remaining length longer than 4 bytes")
            if length + hdr > limit:
                raise MQTTError(PACKET_TOO_LARGE,
                                f"packet of {length + hdr} bytes exceeds max_packet_size {limit}")
            end = pos + hdr + length
            if end > n:
                break
            byte0 = buf[pos]
            append((byte0, buf[pos + hdr:end]))
            self.n_frames += 1
            if byte0 >> 4 != 3:
                self.n_other += 1
            elif byte0 & 0x06 == 0x02:
                self.n_qos1 += 1
            elif byte0 & 0x06 == 0x04:
                self.n_qos2 += 1
            pos = end
        self._buf = buf[pos:] if pos < n else b""
        return frames


FrameReaderPy = FrameReader
FrameReader = pick(FrameReader)
