"""Calling rule SQL functions by name, as the compiled rule does."""
from emqpy.rule_engine.funcs import lookup


def call(name, *args):
    fn, needs_columns = lookup(name)
    assert not needs_columns, f"{name} reads the columns: use call_with"
    return fn(*args)


def call_with(columns, name, *args):
    fn, needs_columns = lookup(name)
    assert needs_columns, f"{name} does not read the columns: use call"
    return fn(columns, *args)


def message(**over):
    """EMQX's emqx_message:to_map of make(<<"clientid">>, 1, <<"topic/#">>, <<"payload">>)
    with flags #{dup => false}."""
    m = {"id": "0005F8F84FFF6C7EF44200000C8A0001", "qos": 1, "from": "clientid",
         "flags": {"dup": False}, "headers": {}, "topic": "topic/#", "payload": "payload",
         "timestamp": 1700000000000, "extra": []}
    m.update(over)
    return m


def eventmsg_publish(**over):
    """emqx_rule_events:eventmsg_publish's columns for message()."""
    m = {"id": "0005F8F84FFF6C7EF44200000C8A0001", "clientid": "clientid", "username": None,
         "payload": "payload", "peerhost": None, "peername": None, "topic": "topic/#",
         "qos": 1, "flags": {"dup": False}, "pub_props": {},
         "publish_received_at": 1700000000000, "client_attrs": {},
         "event": "message.publish", "timestamp": 1700000000000, "node": "emqx@127.0.0.1",
         "metadata": {}}
    m.update(over)
    return m
