"""Functions that read the message or event being processed (their first parameter is the
rule's columns: the event map, with EMQX's field names), topic-filter tests, and the
functions with state or randomness: `getenv`, `proc_dict_*`, `kv_store_*`, `random`,
`uuid_v4`.

EMQX's own quirks are kept, so that a rule gives the same result on both brokers:
- `clientid()` reads the field ``from`` (a message's field in EMQX), which the event map of
  ``message.publish`` and the client events do not have: it gives undefined there; the
  ``clientid`` field is the way to the client id;
- `payload(Path)` only looks into a payload that is already a map (an event field), not into
  a JSON text;
- `contains_topic(Filters, Topic, QoS)` and `contains_topic_match(Filters, Topic, QoS)` are
  always false (EMQX compares the found filter with a pattern it can never match).
"""
from __future__ import annotations

import contextvars
import os
import random as _random
import threading
import uuid

from emqpy.mqtt.topic import matches
from emqpy.rule_engine.funcs_base import bad_arg, is_int, loose_eq, sql_name, write_term
from emqpy.rule_engine.funcs_map import nested_get


def _no_args(name: str, args) -> None:
    if args:
        raise TypeError(f"{name}() takes no arguments but {len(args)} were given")


def _column(name: str, key: str):
    def f(columns, *args):
        _no_args(name, args)
        return columns.get(key) if type(columns) is dict else None
    f.__name__ = f.__qualname__ = name
    return f


def flags(columns, *args):
    _no_args("flags", args)
    return columns.get("flags", {}) if type(columns) is dict else {}


def flag(columns, name):
    fl = columns.get("flags") if type(columns) is dict else None
    return fl.get(name) if type(fl) is dict and type(name) is str else None


def topic(columns, *args):
    if len(args) > 1:
        raise TypeError(f"topic() takes 0 or 1 arguments but {len(args)} were given")
    if args and not is_int(args[0]):
        raise bad_arg("topic", args, "the level must be an integer")
    t = columns.get("topic") if type(columns) is dict else None
    if not args or t is None:
        return t
    levels = t.split("/") if type(t) is str else None
    n = args[0]
    if levels is None or not 1 <= n <= len(levels):
        raise bad_arg("topic", args, "no such topic level")
    return levels[n - 1]


def payload(columns, *path):
    if len(path) > 1:
        raise TypeError(f"payload() takes 0 or 1 arguments but {len(path)} were given")
    p = columns.get("payload") if type(columns) is dict else None
    if not path:
        return p
    if type(p) is not dict:
        return None
    if type(path[0]) is not str:
        raise bad_arg("payload", path, "the path must be a string")
    return nested_get(path[0].split("."), p)


# -- topic filter lists -------------------------------------------------------------------------

def _find_filter(function: str, args, filters, topic_, test):
    if type(filters) is not list:
        raise bad_arg(function, args, "a list of topic filters is expected")
    for f in filters:
        if type(f) is dict and "topic" in f and test(f["topic"], topic_):
            return f
    return None


def _topic_match(name, flt) -> bool:
    return type(name) is str and type(flt) is str and matches(flt, name)


def contains_topic(filters, topic_, *qos):
    args = (filters, topic_, *qos)
    if len(qos) > 1:
        raise TypeError(f"contains_topic() takes 2 or 3 arguments but {len(args)} were given")
    found = _find_filter("contains_topic", args, filters, topic_, loose_eq)
    return False if qos else found is not None


def contains_topic_match(filters, topic_, *qos):
    args = (filters, topic_, *qos)
    if len(qos) > 1:
        raise TypeError(f"contains_topic_match() takes 2 or 3 arguments but {len(args)} "
                        "were given")
    found = _find_filter("contains_topic_match", args, filters, topic_, _topic_match)
    return False if qos else found is not None


# -- state: environment, process dictionary, key-value store ------------------------------------

_ENV_CACHE: dict = {}


def getenv(name):
    """The environment variable EMQXVAR_<name> ("" when unset), read once per process as
    EMQX caches it for the node's life."""
    if type(name) is not str:
        raise bad_arg("getenv", (name,), "a variable name is expected")
    if name not in _ENV_CACHE:
        _ENV_CACHE[name] = os.environ.get("EMQXVAR_" + name, "")
    return _ENV_CACHE[name]


# EMQX keeps proc_dict_* values in the Erlang process that runs the rule (the client's
# connection). A runtime that wants the same scope sets PROC_DICT to the connection's own dict
# while it applies rules for that connection; otherwise one dict serves the process.
PROC_DICT: contextvars.ContextVar[dict] = contextvars.ContextVar("rule_proc_dict",
                                                                 default={})


def _term_key(key) -> str:
    return write_term(key)


def proc_dict_get(key):
    return PROC_DICT.get().get(_term_key(key))


def proc_dict_put(key, value):
    """Store a value; returns the previous one (undefined when there was none)."""
    d = PROC_DICT.get()
    k = _term_key(key)
    old = d.get(k)
    d[k] = value
    return old


def proc_dict_del(key):
    return PROC_DICT.get().pop(_term_key(key), None)


# The rule engine's node-wide key-value table (EMQX's ETS table), shared by every rule.
KV_STORE: dict = {}
_KV_LOCK = threading.Lock()


def kv_store_put(key, value):
    with _KV_LOCK:
        KV_STORE[_term_key(key)] = value
    return True


def kv_store_get(key, default=None):
    return KV_STORE.get(_term_key(key), default)


def kv_store_del(key):
    with _KV_LOCK:
        KV_STORE.pop(_term_key(key), None)
    return True


@sql_name("random")
def random_():
    return _random.random()


def uuid_v4():
    return str(uuid.uuid4())


def uuid_v4_no_hyphen():
    return uuid.uuid4().hex


# functions whose first parameter is the rule's columns
COLUMN_FUNCTIONS = {
    "msgid": _column("msgid", "id"), "qos": _column("qos", "qos"),
    "clientid": _column("clientid", "from"), "clientip": _column("clientip", "peerhost"),
    "peerhost": _column("peerhost", "peerhost"), "username": _column("username", "username"),
    "flags": flags, "flag": flag, "topic": topic, "payload": payload,
}

FUNCTIONS = {
    "contains_topic": contains_topic, "contains_topic_match": contains_topic_match,
    "getenv": getenv, "proc_dict_get": proc_dict_get, "proc_dict_put": proc_dict_put,
    "proc_dict_del": proc_dict_del, "kv_store_put": kv_store_put, "kv_store_get": kv_store_get,
    "kv_store_del": kv_store_del, "random": random_, "uuid_v4": uuid_v4,
    "uuid_v4_no_hyphen": uuid_v4_no_hyphen,
}
