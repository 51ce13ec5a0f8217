"""Splitting a byte stream into MQTT frames, sans I/O.

The remaining length is checked against the maximum packet size as soon as the fixed header is
complete, before any of the body is buffered, so an oversized packet costs no memory.
"""
from __future__ import annotations

from emqpy.mqtt.accel import pick
from emqpy.mqtt.reason_codes import PACKET_TOO_LARGE, MQTTError, malformed


class FrameReader:
    __slots__ = ("max_packet_size", "_buf")

    def __init__(self, max_packet_size: int = 1024 * 1024):
        self.max_packet_size = max_packet_size
        self._buf = b""

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
            append((buf[pos], buf[pos + hdr:end]))
            pos = end
        self._buf = buf[pos:] if pos < n else b""
        return frames


FrameReaderPy = FrameReader
FrameReader = pick(FrameReader)
