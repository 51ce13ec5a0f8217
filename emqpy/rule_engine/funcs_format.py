"""`sprintf_s(Format, Args)` and `sprintf(Format, Arg...)`: Erlang's io_lib:format.

Control sequences are ``~F.P.PadModC``: field width (``-`` to left-adjust, ``*`` to take it
from the arguments), precision, pad character, the ``t`` (Unicode) and ``l`` modifiers, and
the control characters ``~s ~w ~p ~W ~P ~e ~f ~g ~b ~B ~x ~X ~+ ~# ~c ~i ~n ~~``. As in
EMQX, the format is taken byte by byte and the result must be bytes again: ``~ts`` of a
string with characters beyond Latin-1 fails there, and fails here. ``~p`` prints on one line
(Erlang breaks terms longer than the line width).
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from emqpy.rule_engine.funcs_base import bad_arg, from_bytes, is_int, to_bytes, write_term


class _FormatError(Exception):
    pass


def _chars_of(arg, unicode: bool) -> str:
    """What ``~s`` prints: a binary, an atom or an (io)list of characters."""
    t = type(arg)
    if t is str:
        if unicode:
            b = to_bytes(arg)
            try:
                return b.decode("utf-8")
            except UnicodeDecodeError:
                return b.decode("latin-1")
        return to_bytes(arg).decode("latin-1")
    if arg is None:
        return "undefined"
    if t is bool:
        return "true" if arg else "false"
    if t is list:
        out = []
        for x in arg:
            if is_int(x) and 0 <= x <= (0x10FFFF if unicode else 255):
                out.append(chr(x))
            elif type(x) in (str, list):
                out.append(_chars_of(x, unicode))
            else:
                raise _FormatError("~s needs a string")
        return "".join(out)
    raise _FormatError("~s needs a string")


def _float_digits(f: float) -> tuple[str, int]:
    """float_data/1: the 21 significant digits of ``%.20e`` and the exponent + 1."""
    mant, exp = ("%.20e" % abs(f)).split("e")
    return mant.replace(".", ""), int(exp) + 1


def _round_digits(digits: str, keep: int) -> tuple[str, bool]:
    """Round a digit string half up to `keep` digits; (digits, carried into a new digit)."""
    if keep < 0:
        return "", False
    d = Decimal("0." + digits).quantize(Decimal(1).scaleb(-keep), rounding=ROUND_HALF_UP)
    if d >= 1:
        return "1" + "0" * keep, True
    text = format(d, "f")[2:]
    return text.ljust(keep, "0")[:keep], False


def _float_f(f: float, prec: int) -> str:
    sign = "-" if str(f).startswith("-") else ""
    digits, e = _float_digits(f)
    if e <= 0:
        digits, e = "0" * (-e + 1) + digits, 1
    r, carry = _round_digits(digits, e + prec)
    if carry:
        e += 1
    int_part, frac = r[:e], r[e:]
    return sign + int_part + "." + frac


def _float_e(f: float, prec: int) -> str:
    sign = "-" if str(f).startswith("-") else ""
    digits, e = _float_digits(f)
    r, carry = _round_digits(digits, prec)
    exp = e if carry else e - 1
    if carry:
        r = r[:prec]
    if f == 0.0:
        exp = 0
    return sign + r[0] + "." + r[1:] + ("e+" if exp >= 0 else "e") + str(exp)


def _float_g(f: float, prec: int) -> str:
    a = abs(f)
    for limit, e in ((0.1, -2), (1.0, -1), (10.0, 0), (100.0, 1), (1000.0, 2), (10000.0, 3)):
        if a < limit:
            break
    else:
        e = None
    if e is not None and ((prec <= 1 and e == -1) or (prec - 1 > e >= -1)):
        return _float_f(f, prec - 1 - e)
    return _float_e(f, 2 if prec <= 1 else prec)


def _adjust(text: str, width, left: bool, pad: str) -> str:
    if width is None or len(text) >= width:
        return text
    fill = pad * (width - len(text))
    return text + fill if left else fill + text


def _term(text: str, width, left: bool, prec, pad: str) -> str:
    """io_lib_format:term/5: a number or term in a field; too wide fills the field with *."""
    if width is None and prec is None:
        return text
    if width is None:
        width = prec
    p = min(prec, width) if prec is not None else width
    if len(text) > p:
        return _adjust("*" * p, width, left, pad)
    return _adjust(text, width, left, pad)


def _string(text: str, width, left: bool, prec, pad: str) -> str:
    if width is None and prec is None:
        return text
    if width is None:
        return _adjust(text[:prec], prec, True, pad)
    if prec is None or prec == width:
        return text[:width] if len(text) > width else _adjust(text, width, left, pad)
    if width < prec:
        raise _FormatError("the field width is smaller than the precision")
    body = text[:prec] if len(text) > prec else text + pad * (prec - len(text))
    return _adjust(body, width, left, pad)


def _char(ch: str, width, left: bool, prec, pad: str) -> str:
    if prec is None:
        return ch * (width or 1)
    if width is not None and width < prec:
        raise _FormatError("the field width is smaller than the precision")
    return _adjust(ch * prec, width, left, pad)


def _int_base(n: int, base: int, lower: bool) -> str:
    if not 2 <= base <= 36:
        raise _FormatError("bad base")
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    m, out = abs(n), []
    while True:
        m, r = divmod(m, base)
        out.append(digits[r])
        if not m:
            break
    s = "".join(reversed(out))
    return s.lower() if lower else s


def _format(fmt: str, args: list) -> str:
    out: list[str] = []
    args = list(args)
    i, n = 0, len(fmt)

    def take():
        if not args:
            raise _FormatError("too few arguments")
        return args.pop(0)

    def number():
        nonlocal i
        if i < n and fmt[i] == "*":
            i += 1
            v = take()
            if not is_int(v):
                raise _FormatError("* needs an integer argument")
            return v
        start = i
        while i < n and fmt[i].isdigit():
            i += 1
        return int(fmt[start:i]) if i > start else None

    while i < n:
        c = fmt[i]
        i += 1
        if c != "~":
            out.append(c)
            continue
        left = False
        if i < n and fmt[i] == "-":
            left, i = True, i + 1
        width = number()
        if width is not None and width < 0:
            left, width = True, -width
        prec, pad = None, " "
        if i < n and fmt[i] == ".":
            i += 1
            prec = number()
            if i < n and fmt[i] == ".":
                i += 1
                if i < n and fmt[i] == "*":
                    i += 1
                    p = take()
                    if not is_int(p):
                        raise _FormatError("the pad character must be a character code")
                    pad = chr(p)
                elif i < n:
                    pad, i = fmt[i], i + 1
        unicode = False
        while i < n and fmt[i] in "tl":
            unicode = unicode or fmt[i] == "t"
            i += 1
        if i >= n:
            raise _FormatError("incomplete control sequence")
        cc = fmt[i]
        i += 1
        out.append(_control(cc, take, width, left, prec, pad, unicode))
    if args:
        raise _FormatError("too many arguments")
    return "".join(out)


def _control(cc, take, width, left, prec, pad, unicode) -> str:
    if cc == "~":
        return _char("~", width, left, prec, pad)
    if cc == "n":
        return "\n" * (width or 1)
    if cc == "s":
        return _string(_chars_of(take(), unicode), width, left, prec, pad)
    if cc in "wpWP":
        a = take()
        if cc in "WP" and not is_int(take()):
            raise _FormatError("~W and ~P need a depth")
        text = write_term(a, pretty=cc in "pP", unicode=unicode)
        # for ~p the field width is the line length, which one-line output never reaches
        return text if cc in "pP" else _term(text, width, left, prec, pad)
    if cc in "efg":
        a = take()
        if type(a) is not float:
            raise _FormatError(f"~{cc} needs a float")
        p = 6 if prec is None else prec
        if cc == "f":
            if p < 1:
                raise _FormatError("bad precision")
            text = _float_f(a, p)
        elif cc == "e":
            if p < 2:
                raise _FormatError("bad precision")
            text = _float_e(a, p)
        else:
            text = _float_g(a, p)
        return _term(text, width, left, width, pad)
    if cc in "bBxX+#":
        a = take()
        prefix = ""
        if cc in "xX":
            pre = take()
            prefix = _chars_of(pre, False)
        if not is_int(a):
            raise _FormatError(f"~{cc} needs an integer")
        base = 10 if prec is None else prec
        digits = _int_base(a, base, cc in "bx+")
        if cc in "+#":
            prefix = f"{base}#"
        text = ("-" if a < 0 else "") + prefix + digits
        return _term(text, width, left, None, pad)
    if cc == "c":
        a = take()
        if not is_int(a) or a < 0:
            raise _FormatError("~c needs a character code")
        return _char(chr(a if unicode else a & 255), width, left, prec, pad)
    if cc == "i":
        take()
        return ""
    raise _FormatError(f"unknown control ~{cc}")


def format_erl(fmt: str, args: list, function: str, call_args) -> str:
    """io_lib:format over the bytes of `fmt`, result back as a binary."""
    try:
        text = _format(to_bytes(fmt).decode("latin-1"), args)
        return from_bytes(text.encode("latin-1"))
    except _FormatError as e:
        raise bad_arg(function, call_args, f"bad format: {e}") from None
    except UnicodeEncodeError:
        raise bad_arg(function, call_args,
                      "bad format: characters beyond Latin-1 in the result") from None


def sprintf_s(fmt, args):
    if type(fmt) is not str or type(args) is not list:
        raise bad_arg("sprintf_s", (fmt, args), "a format string and a list of arguments "
                                                "expected")
    return format_erl(fmt, args, "sprintf_s", (fmt, args))


def sprintf(fmt, *args):
    if type(fmt) is not str:
        raise bad_arg("sprintf", (fmt, *args), "the format must be a string")
    return format_erl(fmt, list(args), "sprintf", (fmt, *args))


FUNCTIONS = {"sprintf_s": sprintf_s, "sprintf": sprintf}
