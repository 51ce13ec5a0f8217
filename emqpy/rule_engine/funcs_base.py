"""What every area module of the rule SQL functions shares: the error they raise, the
conversions between the value model and bytes, bitstrings, and Erlang's view of terms (its
equality, its order and its printed form, as error messages and `sprintf` show them).

The value model is the package's (see ``emqpy/rule_engine/__init__.py``): a binary is a ``str``
whose bytes are ``s.encode("utf-8", "surrogateescape")``.
"""
from __future__ import annotations

from decimal import Decimal


class SQLFunctionError(Exception):
    """A rule SQL function was called with arguments it does not take (EMQX's
    ``bad_sql_function_argument`` or the error the function itself raises). The rule runtime
    counts it as ``failed.exception``."""

    def __init__(self, function: str, args: tuple | list, reason: str):
        self.function, self.args_, self.reason = function, tuple(args), reason
        call = f"{function}({', '.join(write_term(a) for a in args)})"
        super().__init__(f"{call}: {reason}")

    def details(self) -> dict:
        """The error as EMQX reports a function called with arguments it does not take (what
        the rule test API and traces show), with this error's explanation added."""
        return {"reason": "bad_sql_function_argument", "function_name": self.function,
                "arguments": list(self.args_), "explanation": self.reason}


def bad_arg(function: str, args, reason: str = "bad argument") -> SQLFunctionError:
    return SQLFunctionError(function, args, reason)


def sql_name(name: str):
    """Give a Python function its SQL name, so that Python's own arity errors name the SQL
    function (``str() takes 1 positional argument but 2 were given``)."""
    def rename(fn):
        fn.__name__ = fn.__qualname__ = name
        return fn
    return rename


# -- the value model ----------------------------------------------------------------------------

def to_bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def from_bytes(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def is_int(v) -> bool:
    """An Erlang integer: an ``int`` that is not a ``bool``."""
    return type(v) is int


def is_number(v) -> bool:
    t = type(v)
    return t is int or t is float


class BitString:
    """An Erlang bitstring whose size is not a whole number of bytes (what ``subbits`` with
    type ``bits`` can return). `data` holds the bits from the most significant bit of its first
    byte on; the unused low bits of the last byte are zero."""

    __slots__ = ("data", "nbits")

    def __init__(self, data: bytes, nbits: int):
        self.data, self.nbits = data, nbits

    @classmethod
    def from_int(cls, value: int, nbits: int) -> "BitString | str":
        """The low `nbits` bits of `value`, as a binary (str) when they make whole bytes."""
        value &= (1 << nbits) - 1
        if nbits % 8 == 0:
            return from_bytes(value.to_bytes(nbits // 8, "big"))
        pad = -nbits % 8
        return cls((value << pad).to_bytes((nbits + pad) // 8, "big"), nbits)

    def to_int(self) -> int:
        return int.from_bytes(self.data, "big") >> (-self.nbits % 8)

    def __eq__(self, other):
        return isinstance(other, BitString) and (self.data, self.nbits) == (other.data, other.nbits)

    def __hash__(self):
        return hash((self.data, self.nbits))

    def __repr__(self):
        return f"BitString({self.data!r}, {self.nbits})"


def bits_of(v) -> tuple[int, int] | None:
    """(value, bit count) of a binary or bitstring, None for anything else."""
    if type(v) is str:
        b = to_bytes(v)
        return int.from_bytes(b, "big"), len(b) * 8
    if isinstance(v, BitString):
        return v.to_int(), v.nbits
    return None


# -- Erlang's equality and order ----------------------------------------------------------------

def exact_eq(a, b) -> bool:
    """Erlang's ``=:=`` (what ``lists:member`` uses): 1 and 1.0 differ, true is not 1."""
    ta, tb = type(a), type(b)
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(exact_eq(x, y) for x, y in zip(a, b))
    if ta is dict:
        return len(a) == len(b) and all(k in b and exact_eq(v, b[k]) for k, v in a.items())
    return a == b


def loose_eq(a, b) -> bool:
    """Erlang's ``==``: numbers compare by value (1 == 1.0), booleans are atoms, not numbers."""
    if is_number(a) and is_number(b):
        return a == b
    ta, tb = type(a), type(b)
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(loose_eq(x, y) for x, y in zip(a, b))
    if ta is dict:
        return len(a) == len(b) and all(k in b and loose_eq(v, b[k]) for k, v in a.items())
    return a == b


def term_key(v):
    """A sort key that orders values as Erlang's term order does: numbers < atoms < maps <
    [] < lists < binaries."""
    t = type(v)
    if t is int or t is float:
        return (0, v)
    if v is None:
        return (1, b"undefined")
    if t is bool:
        return (1, b"true" if v else b"false")
    if t is dict:
        keys = sorted(v, key=term_key)
        return (6, len(v), [term_key(k) for k in keys], [term_key(v[k]) for k in keys])
    if t is list:
        return (7,) if not v else (8, [term_key(x) for x in v])
    if t is str:
        return (9, to_bytes(v), 0)
    if isinstance(v, BitString):
        return (9, v.data, v.nbits)
    return (10, repr(v))


def sorted_keys(d: dict) -> list:
    """A map's keys in the order Erlang lists them (``maps:keys``/``maps:to_list`` of a map of
    up to 32 keys: term order)."""
    return sorted(d, key=term_key)


# -- Erlang's printed form of terms -------------------------------------------------------------

def float_short(f: float) -> str:
    """Erlang's shortest round-trip form of a float (``float_to_list(F, [short])``, ``~p``,
    ``~w``): ``1.0``, ``0.1``, ``1.0e16``, ``1.5e-7``."""
    if f == 0.0:
        return "-0.0" if str(f).startswith("-") else "0.0"
    sign, digits, exp = Decimal(repr(f)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    place = exp + (len(digits) - len(ds))       # decimal exponent of the last digit
    n = len(ds)
    e = place + n - 1
    exp_cost = len(str(e)) + 2
    if place < 0:
        if e >= 0:
            body = ds[:n + place] + "." + ds[n + place:]
        elif 2 - place - n <= exp_cost:
            body = "0." + "0" * (-place - n) + ds
        else:
            body = _with_exp(ds, e)
    else:
        dot = 1 if n == 1 else 0
        if exp_cost + dot >= place + 2 and abs(f) < 9007199254740992.0:
            body = ds + "0" * place + ".0"
        else:
            body = _with_exp(ds, e)
    return ("-" if sign else "") + body


def _with_exp(ds: str, e: int) -> str:
    return ds + ".0e" + str(e) if len(ds) == 1 else ds[0] + "." + ds[1:] + "e" + str(e)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\b": "\\b", "\f": "\\f",
            "\x1b": "\\e", '"': '\\"', "\\": "\\\\"}
_PRINTABLE_CONTROLS = frozenset(b"\n\r\t\v\b\f\x1b")


def printable_latin1(codes) -> bool:
    """``io_lib:printable_latin1_list``: each code a printable Latin-1 character."""
    return all(32 <= c <= 126 or 160 <= c <= 255 or c in _PRINTABLE_CONTROLS for c in codes)


def printable_unicode(s: str) -> bool:
    return all(
        (32 <= ord(c) <= 126) or (160 <= ord(c) < 0xD800) or (0xE000 <= ord(c) <= 0x10FFFF
                                                                and ord(c) not in (0xFFFE, 0xFFFF))
        or ord(c) in _PRINTABLE_CONTROLS for c in s)


def quote_chars(s: str) -> str:
    return '"' + "".join(_ESCAPES.get(c, c) for c in s) + '"'


def write_term(v, pretty: bool = False, unicode: bool = False) -> str:
    """A value as Erlang writes it: ``~w`` (pretty=False) or ``~p`` on one line (pretty=True,
    strings and printable binaries shown as text; `unicode` is the ``t`` modifier). The
    result is a str of characters (each under 256 unless `unicode`)."""
    t = type(v)
    if t is int:
        return str(v)
    if t is float:
        return float_short(v)
    if v is None:
        return "undefined"
    if t is bool:
        return "true" if v else "false"
    if t is str:
        b = to_bytes(v)
        if not b:
            return "<<>>"
        if pretty:
            if unicode and max(b) > 127:
                try:
                    text = b.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                if text is not None and printable_unicode(text):
                    return "<<" + quote_chars(text) + "/utf8>>"
            if printable_latin1(b):
                return "<<" + quote_chars(b.decode("latin-1")) + ">>"
        return "<<" + ",".join(map(str, b)) + ">>"
    if isinstance(v, BitString):
        full, rest = divmod(v.nbits, 8)
        parts = [str(x) for x in v.data[:full]]
        parts.append(f"{v.data[full] >> (8 - rest)}:{rest}")
        return "<<" + ",".join(parts) + ">>"
    if t is list:
        if pretty and v and all(type(x) is int for x in v):
            if printable_latin1(v) or (unicode and all(0 <= x <= 0x10FFFF for x in v)
                                       and printable_unicode("".join(map(chr, v)))):
                return quote_chars("".join(map(chr, v)))
        return "[" + ",".join(write_term(x, pretty, unicode) for x in v) + "]"
    if t is dict:
        items = (write_term(k, pretty, unicode) + " => " + write_term(v[k], pretty, unicode)
                 for k in sorted_keys(v))
        return "#{" + ",".join(items) + "}"
    return repr(v)
