"""EMQX's `acl.conf`: Erlang terms `{allow|deny, Who, Action, Topics}.` parsed and matched.

Who: all | {user|username, Name | {re, Re}} | {client|clientid, Id | {re, Re}} |
{ipaddr, CIDR} | {ipaddrs, [CIDR]} | {'and'|'or', [Who]}. Action: publish | subscribe | all |
{Action, [{qos, Q | [Q]}, {retain, true|false|all}]}. Topics: filters, {eq, Filter},
`${clientid}`/`${username}` placeholders. `{allow, all}.` / `{deny, all}.` match everything.
"""
from __future__ import annotations

import ipaddress
import re

from emqpy.authz.match import Rule, TopicSpec


class AclSyntaxError(ValueError):
    pass


class Atom(str):
    """An Erlang atom (distinct from a string)."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+|%[^\n]*) |
    (?P<str>"(?:[^"\\]|\\.)*") |
    (?P<qatom>'(?:[^'\\]|\\.)*') |
    (?P<num>-?\d+) |
    (?P<atom>[a-z][A-Za-z0-9_@]*) |
    (?P<punct>[{}\[\],.])
""", re.X | re.S)


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def tokenize(text: str):
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise AclSyntaxError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "str":
            yield "term", _unescape(val[1:-1]), line
        elif kind == "qatom":
            yield "term", Atom(_unescape(val[1:-1])), line
        elif kind == "num":
            yield "term", int(val), line
        elif kind == "atom":
            yield "term", Atom(val), line
        elif kind == "punct":
            yield val, val, line
        line += val.count("\n")
        pos = m.end()


def parse_terms(text: str) -> list:
    toks = list(tokenize(text))
    pos = 0

    def term():
        nonlocal pos
        if pos >= len(toks):
            raise AclSyntaxError("unexpected end of file")
        kind, val, line = toks[pos]
        pos += 1
        if kind == "term":
            return val
        if kind in ("{", "["):
            close = "}" if kind == "{" else "]"
            items = []
            if pos < len(toks) and toks[pos][0] == close:
                pos += 1
                return tuple(items) if kind == "{" else items
            while True:
                items.append(term())
                if pos >= len(toks):
                    raise AclSyntaxError(f"line {line}: unterminated {kind}")
                k = toks[pos][0]
                pos += 1
                if k == close:
                    return tuple(items) if kind == "{" else items
                if k != ",":
                    raise AclSyntaxError(f"line {toks[pos - 1][2]}: expected ',' or {close!r}")
        raise AclSyntaxError(f"line {line}: unexpected {val!r}")

    out = []
    while pos < len(toks):
        t = term()
        if pos >= len(toks) or toks[pos][0] != ".":
            raise AclSyntaxError(f"line {toks[min(pos, len(toks) - 1)][2]}: "
                                 "a rule must end with '.'")
        pos += 1
        out.append(t)
    return out


def _who(w):
    if w == "all":
        return lambda ch: True
    if isinstance(w, tuple) and len(w) == 2:
        kind, arg = w
        if kind in ("user", "username", "client", "clientid"):
            attr = "username" if kind in ("user", "username") else "clientid"
            if isinstance(arg, tuple) and len(arg) == 2 and arg[0] == "re":
                rx = re.compile(arg[1])
                return lambda ch: getattr(ch, attr) is not None and \
                    rx.search(getattr(ch, attr)) is not None
            if isinstance(arg, str) and not isinstance(arg, Atom):
                return lambda ch: getattr(ch, attr) == arg
        if kind in ("ipaddr", "ipaddrs"):
            cidrs = [arg] if kind == "ipaddr" else arg
            if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
                raise AclSyntaxError(f"bad {kind}: {arg!r}")
            nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]

            def by_ip(ch):
                try:
                    ip = ipaddress.ip_address(ch.peerhost)
                except (TypeError, ValueError):
                    return False
                if getattr(ip, "ipv4_mapped", None):
                    ip = ip.ipv4_mapped
                return any(ip in n for n in nets)
            return by_ip
        if kind in ("and", "or") and isinstance(arg, list):
            subs = [_who(x) for x in arg]
            if kind == "and":
                return lambda ch: all(f(ch) for f in subs)
            return lambda ch: any(f(ch) for f in subs)
    raise AclSyntaxError(f"bad 'who' in rule: {w!r}")


def _action(a) -> tuple[str, set | None, object]:
    qos, retain = None, "all"
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], list):
        a, conds = a
        for c in conds:
            if not (isinstance(c, tuple) and len(c) == 2):
                raise AclSyntaxError(f"bad action condition {c!r}")
            if c[0] == "qos":
                q = c[1] if isinstance(c[1], list) else [c[1]]
                if not all(isinstance(x, int) and 0 <= x <= 2 for x in q):
                    raise AclSyntaxError(f"bad qos condition {c!r}")
                qos = set(q)
            elif c[0] == "retain":
                if c[1] not in ("true", "false", "all"):
                    raise AclSyntaxError(f"bad retain condition {c!r}")
                retain = {"true": True, "false": False}.get(c[1], "all")
            else:
                raise AclSyntaxError(f"unknown action condition {c[0]!r}")
    if a == "pubsub":
        a = "all"
    if a not in ("publish", "subscribe", "all"):
        raise AclSyntaxError(f"bad action {a!r}")
    return str(a), qos, retain


def _topics(ts) -> list[TopicSpec]:
    if isinstance(ts, (str, tuple)):
        ts = [ts]
    out = []
    for t in ts:
        if isinstance(t, tuple) and len(t) == 2 and t[0] == "eq" and isinstance(t[1], str):
            out.append(TopicSpec(t[1], eq=True))
        elif isinstance(t, str) and not isinstance(t, Atom):
            out.append(TopicSpec(t))
        else:
            raise AclSyntaxError(f"bad topic {t!r}")
    return out


def compile_rules(text: str) -> list[Rule]:
    rules = []
    for t in parse_terms(text):
        if not isinstance(t, tuple) or not t or t[0] not in ("allow", "deny"):
            raise AclSyntaxError(f"a rule must be {{allow|deny, ...}}: {t!r}")
        if len(t) == 2 and t[1] == "all":
            rules.append(Rule(str(t[0]), lambda ch: True, "all", None, "all", None))
        elif len(t) == 4:
            action, qos, retain = _action(t[2])
            rules.append(Rule(str(t[0]), _who(t[1]), action, qos, retain, _topics(t[3])))
        else:
            raise AclSyntaxError(f"bad rule {t!r}")
    return rules
