"""Hashes, compression, base64, the term codec, bits and jq: port of emqx_rule_funcs_SUITE's
t_term_encode, t_bitsize .. t_subbits_not_even_bytes, t_hash_funcs, t_zip_funcs,
t_gzip_funcs, t_zip_compress_funcs, t_base64_encode, t_jq and emqx_variform_bif_tests'
base64 case."""
import base64
import gzip
import hashlib
import os
import struct
import time
import zlib

import pytest
from hypothesis import given, strategies as st

from emqpy.rule_engine.funcs import SQLFunctionError
from emqpy.rule_engine.funcs_base import BitString

from .funcs_helpers import call


def b(data: bytes) -> str:
    """A binary in the value model."""
    return data.decode("utf-8", "surrogateescape")


binaries = st.binary().map(b)


def test_term_encode():
    for data in ["abc", {"a": 1}, {"3": [1, 2, 4]}]:
        assert call("term_decode", call("term_encode", data)) == data


def test_term_encode_is_erlangs_external_format():
    assert call("term_encode", "abc") == b(b"\x83m\x00\x00\x00\x03abc")
    assert call("term_encode", 1) == b(b"\x83a\x01")
    assert call("term_encode", [1, 2]) == b(b"\x83k\x00\x02\x01\x02")
    assert call("term_encode", True) == b(b"\x83w\x04true")
    assert call("term_decode", b(b"\x83d\x00\x02ok")) == "ok"        # an old-style atom
    assert call("term_decode", b(b"\x83h\x02a\x01a\x02")) == [1, 2]  # a tuple becomes a list
    with pytest.raises(SQLFunctionError):
        call("term_decode", "not a term")


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20))
def test_term_codec_round_trip(value):
    assert call("term_decode", call("term_encode", value)) == value


def test_bitsize():
    assert call("bitsize", "a") == 8
    assert call("bitsize", BitString.from_int(15, 4)) == 4


def test_bytesize():
    assert call("bytesize", "a") == 1
    assert call("bytesize", "") == 0
    assert call("bytesize", "你") == 3
    assert call("bytesize", ["ab", [1, 2]]) == 4


def test_subbits():
    for n in range(1, 9):
        assert call("subbits", b(bytes([255])), n) == 2 ** n - 1


def test_subbits2():
    for n in range(1, 9):
        assert call("subbits", b(bytes([255])), 1, n) == 2 ** n - 1


def test_subbits2_1():
    for n in range(1, 8):
        assert call("subbits", b(bytes([255])), 2, n) == 2 ** n - 1
    assert call("subbits", b(bytes([255])), 2, 8) == 127      # only 7 bits are left


def test_subbits2_integer():
    assert call("subbits", b(struct.pack(">i", 456)), 1, 32, "integer", "signed", "big") == 456
    assert call("subbits", b(struct.pack(">i", -456)), 1, 32, "integer", "signed", "big") == -456


def test_subbits2_float():
    r = call("subbits", b(struct.pack(">d", 5.3)), 1, 64, "float", "unsigned", "big")
    assert abs(5.3 - r) < 0.0001
    r2 = call("subbits", b(struct.pack(">d", -5.3)), 1, 64, "float", "signed", "big")
    assert abs(5.3 + r2) < 0.0001


def test_subbits_4_args():
    r = call("subbits", b(struct.pack(">d", 5.3)), 1, 64, "float")
    assert abs(5.3 - r) < 0.0001


def test_subbits_5_args():
    assert call("subbits", b(struct.pack(">i", 456)), 1, 32, "integer", "unsigned") == 456


def test_subbits_not_even_bytes():
    data = call("hexstr2bin", "9F4E58")
    bits = call("subbits", data, 1, 6, "bits", "unsigned", "big")
    assert call("bin2hexstr", bits) == "27"


def test_subbits_little_endian_and_edges():
    data = b(struct.pack("<H", 0x1234))
    assert call("subbits", data, 1, 16, "integer", "unsigned", "little") == 0x1234
    assert call("subbits", b(struct.pack("<f", 1.5)), 1, 32, "float", "signed", "little") == 1.5
    # Erlang's little-endian bit fields: full bytes first, the high bits in the last part
    assert call("subbits", b(bytes([0x23, 0x10])), 1, 12, "integer", "unsigned", "little") \
        == 0x123
    assert call("subbits", b(bytes([255])), 9, 1) is None       # start past the end
    assert call("subbits", b(bytes([255])), 0, 1) is None
    assert call("subbits", b(bytes([0xAB, 0xCD])), 1, 16, "bits") == b(bytes([0xAB, 0xCD]))
    with pytest.raises(SQLFunctionError):
        call("subbits", b(bytes([1, 2, 3])), 1, 24, "float")   # no 24-bit floats
    with pytest.raises(SQLFunctionError):
        call("subbits", "a", 1, 8, "string")


@given(binaries)
def test_hash_funcs(s):
    assert len(call("md5", s)) == 32
    assert len(call("sha", s)) == 40
    assert len(call("sha256", s)) == 64


def test_hash_values():
    assert call("md5", "abc") == hashlib.md5(b"abc").hexdigest()
    assert call("sha", "abc") == hashlib.sha1(b"abc").hexdigest()
    assert call("hash", "sha1", "abc") == hashlib.sha1(b"abc").hexdigest()
    assert call("hash", "sha3_256", "abc") == hashlib.sha3_256(b"abc").hexdigest()
    assert call("hash", "shake128", "abc") == hashlib.shake_128(b"abc").hexdigest(16)
    assert call("hash", "blake2b", "abc") == hashlib.blake2b(b"abc").hexdigest()
    with pytest.raises(SQLFunctionError, match="unknown_hash_algorithm"):
        call("hash", "nope", "abc")
    with pytest.raises(SQLFunctionError):
        call("md5", 1)


@given(binaries)
def test_zip_funcs(s):
    assert call("unzip", call("zip", s)) == s


@given(binaries)
def test_gzip_funcs(s):
    assert call("gunzip", call("gzip", s)) == s


@given(binaries)
def test_zip_compress_funcs(s):
    assert call("zip_uncompress", call("zip_compress", s)) == s


def test_compressed_formats_are_the_standard_ones():
    raw = b"hello hello hello"
    assert gzip.decompress(call("gzip", b(raw)).encode("utf-8", "surrogateescape")) == raw
    assert zlib.decompress(call("zip_compress", b(raw)).encode("utf-8", "surrogateescape")) \
        == raw
    assert call("gunzip", b(gzip.compress(raw))) == b(raw)
    with pytest.raises(SQLFunctionError, match="data_error"):
        call("unzip", "not deflate data at all \udcff")


@given(st.binary())
def test_base64_encode(data):
    assert base64.b64decode(call("base64_encode", b(data))) == data


def test_base64_encode_decode():
    data = os.urandom(100)
    assert call("base64_decode", call("base64_encode", b(data))) == b(data)
    assert call("base64_decode", "YWJj\nZA==") == "abcd"       # whitespace is skipped
    for bad in ("YWJjZA", "YW?j", "@@@@"):
        with pytest.raises(SQLFunctionError):
            call("base64_decode", bad)


def test_json_encode_decode():
    assert call("json_encode", {"b": 2, "a": [1, 2.5, None, True]}) == \
        '{"b":2,"a":[1,2.5,null,true]}'
    assert call("json_encode", "a\"\\\n\x01/é") == '"a\\"\\\\\\n\\u0001/é"'
    assert call("json_encode", [1e21, 1e20, 0.1, 1.5e-7]) == \
        "[1e+21,100000000000000000000.0,0.1,1.5e-7]"
    assert call("json_decode", '{"a": [1, 1.0, 1e2, null, "x"]}') == \
        {"a": [1, 1.0, 100.0, None, "x"]}
    assert call("json_decode", "123456789012345678901234567890") == \
        123456789012345678901234567890
    for bad in ("{", "NaN", "", 1):
        with pytest.raises(SQLFunctionError):
            call("json_decode", bad)


def jq_1_elm_res(json_text):
    return [call("json_decode", json_text)]


def test_jq():
    assert call("jq", ".", call("json_decode", '{"b": 2}')) == jq_1_elm_res('{"b":2}')
    assert call("jq", ".+1", call("json_decode", "5")) == jq_1_elm_res("6")
    assert call("jq", ".", '{"b": 2}') == jq_1_elm_res('{"b":2}')
    assert call("jq", ".", '{"b": 2}', 10000) == jq_1_elm_res('{"b":2}')
    assert call("jq", ".[] | .a", [{"a": 1}, {"a": "x"}]) == [1, "x"]
    assert call("jq", "empty", 1) == []


TIMEOUT_PROGRAM = ("def while(cond; update):"
                   "  def _while:"
                   "    if cond then  (update | _while) else . end;"
                   "  _while;"
                   "while(. < 42; . * 2)")


def test_jq_timeout():
    start = time.monotonic()
    with pytest.raises(SQLFunctionError, match="jq_exception: timeout"):
        call("jq", TIMEOUT_PROGRAM, "-2", 10)
    assert time.monotonic() - start < 5
    # the worker is replaced: the next program runs
    assert call("jq", ".+1", 1) == [2]


def test_jq_errors():
    with pytest.raises(SQLFunctionError, match="jq_exception"):
        call("jq", ".a |||", 1)
    with pytest.raises(SQLFunctionError, match="jq_exception"):
        call("jq", ".a", 5)
    with pytest.raises(SQLFunctionError, match="jq_exception"):
        call("jq", ".", "{not json")
