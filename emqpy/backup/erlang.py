"""Reading the tables of an EMQX backup: Mnesia backup files (``mnesia/<table>``), which are
Erlang ``disk_log`` files of terms in Erlang's external term format.

A disk_log file starts with 8 bytes (a magic and an opened/closed mark); each item is a 4-byte
big-endian size, the 4-byte magic ``bWLA``, an MD5 of the item when it is 65528 bytes or more,
then the term. A Mnesia backup holds a ``log_header`` term, one ``{schema, Table, Props}`` per
table (its ``attributes`` name the record fields), then the records, each a tuple whose first
element is the table name.

Terms map to Python as: atom -> ``Atom`` (a str), binary -> bytes, integer -> int, float ->
float, tuple -> tuple, list -> list, charlist (``"..."``) -> list of ints, map -> dict;
pids, ports, references and funs -> ``Opaque``.
"""
from __future__ import annotations

import struct
import zlib

HEADER = b"\x01\x02\x03\x04"
CLOSED, OPENED = b"cXM\x0b", b"\x06\x07\x08\x09"
ITEM_MAGIC = b"bWLA"
MD5_FROM = 65528  # items this size or larger carry an MD5 after the magic


class Atom(str):
    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str(self)!r})"


class Opaque:
    """A pid, port, reference or fun: nothing a backup's data needs."""

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


class TermError(ValueError):
    pass


def _hashable(v):
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


class _Reader:
    def __init__(self, data: bytes):
        self.d, self.i = data, 0

    def take(self, n: int) -> bytes:
        if self.i + n > len(self.d):
            raise TermError("truncated term")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def term(self):  # noqa: C901 (one branch per tag)
        tag = self.u8()
        if tag == 97:  # SMALL_INTEGER
            return self.u8()
        if tag == 98:  # INTEGER
            return struct.unpack(">i", self.take(4))[0]
        if tag == 70:  # NEW_FLOAT
            return struct.unpack(">d", self.take(8))[0]
        if tag in (100, 118):  # ATOM, ATOM_UTF8
            return self._atom(self.take(self.u16()))
        if tag in (115, 119):  # SMALL_ATOM, SMALL_ATOM_UTF8
            return self._atom(self.take(self.u8()))
        if tag == 104:  # SMALL_TUPLE
            return tuple(self.term() for _ in range(self.u8()))
        if tag == 105:  # LARGE_TUPLE
            return tuple(self.term() for _ in range(self.u32()))
        if tag == 106:  # NIL
            return []
        if tag == 107:  # STRING (a list of bytes)
            return list(self.take(self.u16()))
        if tag == 108:  # LIST
            n = self.u32()
            items = [self.term() for _ in range(n)]
            tail = self.term()
            return items if tail == [] else items + [tail]  # (an improper tail kept last)
        if tag == 109:  # BINARY
            return self.take(self.u32())
        if tag == 77:  # BIT_BINARY: whole bytes are what a backup uses
            n = self.u32()
            self.u8()
            return self.take(n)
        if tag in (110, 111):  # SMALL_BIG, LARGE_BIG
            n = self.u8() if tag == 110 else self.u32()
            sign = self.u8()
            value = int.from_bytes(self.take(n), "little")
            return -value if sign else value
        if tag == 116:  # MAP
            n = self.u32()
            out = {}
            for _ in range(n):
                k = self.term()
                out[_hashable(k)] = self.term()
            return out
        if tag == 80:  # compressed term
            size = self.u32()
            inner = zlib.decompress(self.d[self.i:])
            if len(inner) != size:
                raise TermError("bad compressed term")
            self.i = len(self.d)
            return _Reader(inner).term()
        if tag in (88, 103):  # NEW_PID, PID
            self.term()
            self.take(12 if tag == 88 else 9)
            return Opaque("pid")
        if tag in (89, 102):  # NEW_PORT, PORT
            self.term()
            self.take(8 if tag == 89 else 5)
            return Opaque("port")
        if tag == 120:  # V4_PORT
            self.term()
            self.take(12)
            return Opaque("port")
        if tag in (90, 114):  # NEWER_REFERENCE, NEW_REFERENCE
            n = self.u16()
            self.term()
            self.take((4 if tag == 90 else 1) + 4 * n)
            return Opaque("reference")
        if tag == 113:  # EXPORT (fun M:F/A)
            self.term(), self.term(), self.term()
            return Opaque("fun")
        raise TermError(f"unsupported term tag {tag}")

    @staticmethod
    def _atom(raw: bytes):
        text = raw.decode("utf-8", "replace")
        if text == "true":
            return True
        if text == "false":
            return False
        return Atom(text)


def decode(data: bytes):
    """One term from its external format (leading version byte 131)."""
    if not data or data[0] != 131:
        raise TermError("not an Erlang external term")
    r = _Reader(data)
    r.i = 1
    return r.term()


def disk_log_terms(data: bytes) -> list:
    """Every term of a disk_log file; TermError if it is not one or is damaged."""
    if len(data) < 8 or data[:4] != HEADER or data[4:8] not in (CLOSED, OPENED):
        raise TermError("not an Erlang disk_log file")
    out, i = [], 8
    while i < len(data):
        if i + 8 > len(data):
            raise TermError("truncated disk_log item")
        size = struct.unpack(">I", data[i:i + 4])[0]
        if data[i + 4:i + 8] != ITEM_MAGIC:
            raise TermError("damaged disk_log item")
        i += 8 + (16 if size >= MD5_FROM else 0)
        if i + size > len(data):
            raise TermError("truncated disk_log item")
        out.append(decode(data[i:i + size]))
        i += size
    return out


def mnesia_records(data: bytes) -> tuple[str, list[dict]]:
    """(table name, records as {attribute: value}) of a Mnesia backup of one table."""
    terms = disk_log_terms(data)
    if not terms or not (isinstance(terms[0], tuple) and terms[0][:1] == ("log_header",)):
        raise TermError("not a Mnesia backup (no log_header)")
    table, attributes, records = None, None, []
    for t in terms[1:]:
        if not isinstance(t, tuple) or not t:
            continue
        if t[0] == "schema" and len(t) == 3 and isinstance(t[2], list):
            table = str(t[1])
            props = {p[0]: p[1] for p in t[2] if isinstance(p, tuple) and len(p) == 2}
            attributes = [str(a) for a in props.get("attributes", [])]
        elif attributes is not None and str(t[0]) == table and len(t) == len(attributes) + 1:
            records.append(dict(zip(attributes, t[1:])))
    if table is None:
        raise TermError("not a Mnesia backup (no schema)")
    return table, records


# -- values of EMQX's records, for the features' converters -----------------------------------

def text(v, default: str | None = "") -> str | None:
    """A binary, charlist or atom as text; ``undefined`` as ``default``."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list) and all(isinstance(c, int) for c in v):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, Atom):
        return default if v == "undefined" else str(v)
    if v is None:
        return default
    return str(v)


def ip_text(v) -> str:
    """An Erlang IP address tuple (4 or 8 integers) as text."""
    import ipaddress
    if isinstance(v, tuple) and len(v) == 4:
        return str(ipaddress.IPv4Address(bytes(v)))
    if isinstance(v, tuple) and len(v) == 8:
        return str(ipaddress.IPv6Address(b"".join(x.to_bytes(2, "big") for x in v)))
    return text(v)


def epoch(v) -> float | None:
    """Seconds, or None for ``infinity`` / ``undefined``."""
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else None
