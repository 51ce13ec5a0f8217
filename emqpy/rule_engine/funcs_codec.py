"""Byte-level functions: hashes, base64, zlib compression, Erlang's external term format
(`term_encode`/`term_decode`), and bits (`bitsize`, `bytesize`, `subbits`).

Inputs and results are binaries, so a result's bytes come back as a str by the value model
(bytes that are not UTF-8 survive as surrogates).
"""
from __future__ import annotations

import base64
import hashlib
import struct
import zlib

from emqpy.rule_engine.funcs_base import (
    BitString, bad_arg, bits_of, from_bytes, is_int, sorted_keys, sql_name, to_bytes,
)


def _binary(function: str, args, v) -> bytes:
    if type(v) is not str:
        raise bad_arg(function, args, "a binary is expected")
    return to_bytes(v)


def iodata(v, function: str, args) -> bytes:
    """The bytes of Erlang iodata: a binary, or a (nested) list of bytes and binaries."""
    if type(v) is str:
        return to_bytes(v)
    if type(v) is list:
        out = bytearray()
        for x in v:
            if is_int(x) and 0 <= x <= 255:
                out.append(x)
            else:
                out += iodata(x, function, args)
        return bytes(out)
    raise bad_arg(function, args, "iodata (a binary or a list of bytes) is expected")


# -- hashes -------------------------------------------------------------------------------------

# crypto's names -> (hashlib name, digest size for the variable-length ones)
_HASHES = {
    "md4": ("md4", None), "md5": ("md5", None), "sha": ("sha1", None), "sha1": ("sha1", None),
    "sha224": ("sha224", None), "sha256": ("sha256", None), "sha384": ("sha384", None),
    "sha512": ("sha512", None), "sha3_224": ("sha3_224", None), "sha3_256": ("sha3_256", None),
    "sha3_384": ("sha3_384", None), "sha3_512": ("sha3_512", None),
    "shake128": ("shake_128", 16), "shake256": ("shake_256", 32),
    "blake2b": ("blake2b", None), "blake2s": ("blake2s", None), "ripemd160": ("ripemd160", None),
    "sm3": ("sm3", None),
}


def _digest(algorithm: str, data: bytes, function: str, args) -> str:
    name, size = _HASHES.get(algorithm, (None, None))
    if name is None:
        raise bad_arg(function, args, f"unknown_hash_algorithm: {algorithm}")
    try:
        h = hashlib.new(name, data)
    except ValueError:
        raise bad_arg(function, args, f"hash algorithm not available here: {algorithm}") from None
    return h.hexdigest(size) if size else h.hexdigest()


def md5(s):
    return _digest("md5", _binary("md5", (s,), s), "md5", (s,))


def sha(s):
    return _digest("sha", _binary("sha", (s,), s), "sha", (s,))


def sha256(s):
    return _digest("sha256", _binary("sha256", (s,), s), "sha256", (s,))


@sql_name("hash")
def hash_(algorithm, data):
    """hash(Algorithm, Data): lowercase hex digest by crypto's algorithm names."""
    args = (algorithm, data)
    if type(algorithm) is not str:
        raise bad_arg("hash", args, "the algorithm must be a string")
    return _digest(algorithm, iodata(data, "hash", args), "hash", args)


# -- base64 and compression ---------------------------------------------------------------------

def base64_encode(data):
    return base64.b64encode(_binary("base64_encode", (data,), data)).decode("ascii")


def base64_decode(data):
    raw = _binary("base64_decode", (data,), data)
    # whitespace is skipped, anything else outside the alphabet or bad padding is an error
    raw = raw.translate(None, b" \t\r\n")
    try:
        return from_bytes(base64.b64decode(raw, validate=True))
    except ValueError:
        raise bad_arg("base64_decode", (data,), "not base64") from None


def _zlib(function: str, data, wbits: int, compress: bool):
    raw = _binary(function, (data,), data)
    try:
        if compress:
            c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, wbits)
            return from_bytes(c.compress(raw) + c.flush())
        d = zlib.decompressobj(wbits)
        out = d.decompress(raw) + d.flush()
        if not d.eof:
            raise zlib.error("incomplete or truncated stream")
        return from_bytes(out)
    except zlib.error as e:
        raise bad_arg(function, (data,), f"data_error: {e}") from None


def gzip(data):
    return _zlib("gzip", data, 31, True)


def gunzip(data):
    return _zlib("gunzip", data, 31, False)


@sql_name("zip")
def zip_(data):
    return _zlib("zip", data, -15, True)


def unzip(data):
    return _zlib("unzip", data, -15, False)


def zip_compress(data):
    return _zlib("zip_compress", data, 15, True)


def zip_uncompress(data):
    return _zlib("zip_uncompress", data, 15, False)


# -- Erlang's external term format --------------------------------------------------------------

def _atom(name: str) -> bytes:
    b = name.encode("utf-8")
    return (struct.pack(">BB", 119, len(b)) if len(b) < 256 else struct.pack(">BH", 118, len(b))) + b


def _enc(v, out: bytearray) -> None:
    t = type(v)
    if t is int:
        if 0 <= v <= 255:
            out += struct.pack(">BB", 97, v)
        elif -(1 << 31) <= v < (1 << 31):
            out += struct.pack(">Bi", 98, v)
        else:
            mag = abs(v).to_bytes((abs(v).bit_length() + 7) // 8, "little")
            head = struct.pack(">BB", 110, len(mag)) if len(mag) < 256 else \
                struct.pack(">BI", 111, len(mag))
            out += head + bytes([1 if v < 0 else 0]) + mag
    elif t is float:
        out += struct.pack(">Bd", 70, v)
    elif t is str:
        b = to_bytes(v)
        out += struct.pack(">BI", 109, len(b)) + b
    elif v is None:
        out += _atom("undefined")
    elif t is bool:
        out += _atom("true" if v else "false")
    elif t is list:
        if not v:
            out.append(106)
        elif len(v) < 65536 and all(type(x) is int and 0 <= x <= 255 for x in v):
            out += struct.pack(">BH", 107, len(v)) + bytes(v)
        else:
            out += struct.pack(">BI", 108, len(v))
            for x in v:
                _enc(x, out)
            out.append(106)
    elif t is dict:
        out += struct.pack(">BI", 116, len(v))
        for k in sorted_keys(v):
            _enc(k, out)
            _enc(v[k], out)
    elif isinstance(v, BitString):
        out += struct.pack(">BIB", 77, len(v.data), v.nbits % 8 or 8) + v.data
    else:
        raise ValueError(f"cannot encode {type(v).__name__}")


def term_encode(term):
    out = bytearray(b"\x83")
    try:
        _enc(term, out)
    except ValueError as e:
        raise bad_arg("term_encode", (term,), str(e)) from None
    return from_bytes(bytes(out))


class _Reader:
    __slots__ = ("b", "i")

    def __init__(self, b: bytes):
        self.b, self.i = b, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.i + n > len(self.b):
            raise ValueError("truncated term")
        s = self.b[self.i:self.i + n]
        self.i += n
        return s

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def _atom_value(name: str):
    return {"true": True, "false": False, "undefined": None, "null": None}.get(name, name)


def _dec(r: _Reader, depth: int = 0):
    if depth > 1000:
        raise ValueError("term nested too deeply")
    tag = r.take(1)[0]
    if tag == 97:
        return r.take(1)[0]
    if tag == 98:
        return r.unpack(">i")[0]
    if tag in (110, 111):
        n = r.take(1)[0] if tag == 110 else r.unpack(">I")[0]
        sign = r.take(1)[0]
        v = int.from_bytes(r.take(n), "little")
        return -v if sign else v
    if tag == 70:
        return r.unpack(">d")[0]
    if tag == 99:
        return float(r.take(31).rstrip(b"\x00"))
    if tag in (100, 118):
        return _atom_value(r.take(r.unpack(">H")[0]).decode("latin-1" if tag == 100 else "utf-8"))
    if tag in (115, 119):
        return _atom_value(r.take(r.take(1)[0]).decode("latin-1" if tag == 115 else "utf-8"))
    if tag == 109:
        return from_bytes(r.take(r.unpack(">I")[0]))
    if tag == 77:
        n, bits = r.unpack(">IB")
        data = r.take(n)
        if bits == 8:
            return from_bytes(data)
        return BitString(data, (n - 1) * 8 + bits)
    if tag == 106:
        return []
    if tag == 107:
        return list(r.take(r.unpack(">H")[0]))
    if tag == 108:
        n = r.unpack(">I")[0]
        items = [_dec(r, depth + 1) for _ in range(n)]
        tail = _dec(r, depth + 1)
        if tail != []:
            raise ValueError("improper lists have no value here")
        return items
    if tag in (104, 105):          # tuples become lists: the value model has no tuples
        n = r.take(1)[0] if tag == 104 else r.unpack(">I")[0]
        return [_dec(r, depth + 1) for _ in range(n)]
    if tag == 116:
        n = r.unpack(">I")[0]
        m = {}
        for _ in range(n):
            k = _dec(r, depth + 1)
            if type(k) is not str:
                raise ValueError("map keys other than strings have no value here")
            m[k] = _dec(r, depth + 1)
        return m
    raise ValueError(f"unsupported term tag {tag}")


def term_decode(data):
    raw = _binary("term_decode", (data,), data)
    try:
        if raw[:1] != b"\x83":
            raise ValueError("not an Erlang external term")
        if raw[1:2] == b"\x50":            # compressed: size, then a zlib stream
            size = struct.unpack(">I", raw[2:6])[0]
            body = zlib.decompress(raw[6:])
            if len(body) != size:
                raise ValueError("bad compressed term")
            raw = b"\x83" + body
        r = _Reader(raw)
        r.i = 1
        v = _dec(r)
        if r.i != len(raw):
            raise ValueError("trailing bytes after the term")
        return v
    except (ValueError, struct.error, zlib.error, UnicodeDecodeError) as e:
        raise bad_arg("term_decode", (data,), f"badarg: {e}") from None


# -- bits ---------------------------------------------------------------------------------------

def bitsize(bits):
    b = bits_of(bits)
    if b is None:
        raise bad_arg("bitsize", (bits,), "a binary is expected")
    return b[1]


def bytesize(data):
    return len(iodata(data, "bytesize", (data,)))


_FLOAT_FORMATS = {16: "e", 32: "f", 64: "d"}


def _decode_bits(value: int, n: int, typ: str, signed: bool, little: bool):
    """`value`'s n bits (big-endian order) read as Erlang's bit syntax reads them; None when
    the pattern does not match (a float of a size other than 16/32/64, or not finite)."""
    if typ == "bits":
        return BitString.from_int(value, n) if n else ""
    if little:
        full, rem = divmod(n, 8)
        chunks = value.to_bytes((n + 7) // 8, "big") if rem == 0 else \
            (value >> rem).to_bytes(full, "big") + bytes([value & ((1 << rem) - 1)])
        value = sum(c << (8 * i) for i, c in enumerate(chunks))
    if typ == "integer":
        if signed and n and value >> (n - 1):
            value -= 1 << n
        return value
    fmt = _FLOAT_FORMATS.get(n)
    if fmt is None:
        return None
    f = struct.unpack(">" + fmt, value.to_bytes(n // 8, "big"))[0]
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def subbits(bits, *args):
    """subbits(Bits, Len) | (Bits, Start, Len[, Type[, Signedness[, Endianness]]]): Len bits
    from bit Start (from 1) read as an integer (default), a float or bits; fewer bits than
    Len left means all that are left; a Start outside the bits gives undefined."""
    call = (bits, *args)
    if len(args) == 1:
        start, length, rest = 1, args[0], ()
    elif 2 <= len(args) <= 5:
        start, length, rest = args[0], args[1], args[2:]
    else:
        raise TypeError(f"subbits() takes 2 to 6 arguments but {len(call)} were given")
    typ, sign, endian = rest + ("integer", "unsigned", "big")[len(rest):]
    b = bits_of(bits)
    if b is None or not is_int(start) or not is_int(length):
        raise bad_arg("subbits", call, "a binary and integer positions expected")
    if typ not in ("integer", "float", "bits") or sign not in ("unsigned", "signed") \
            or endian not in ("big", "little"):
        raise bad_arg("subbits", call, "type must be integer, float or bits; signedness "
                                       "unsigned or signed; endianness big or little")
    value, total = b
    begin = start - 1
    if begin < 0 or begin >= total:
        return None
    size = total - begin
    rem = value & ((1 << size) - 1)
    signed, little = sign == "signed", endian == "little"
    if 0 <= length <= size:
        r = _decode_bits(rem >> (size - length), length, typ, signed, little)
        if r is not None:
            return r
    r = _decode_bits(rem, size, typ, signed, little)
    if r is None:
        raise bad_arg("subbits", call, "case_clause: the bits are not a float of 16, 32 or "
                                       "64 bits")
    return r


FUNCTIONS = {
    "md5": md5, "sha": sha, "sha256": sha256, "hash": hash_,
    "base64_encode": base64_encode, "base64_decode": base64_decode,
    "gzip": gzip, "gunzip": gunzip, "zip": zip_, "unzip": unzip,
    "zip_compress": zip_compress, "zip_uncompress": zip_uncompress,
    "term_encode": term_encode, "term_decode": term_decode,
    "bitsize": bitsize, "bytesize": bytesize, "subbits": subbits,
}
