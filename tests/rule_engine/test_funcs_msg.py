"""Functions that read the message or event (port of emqx_rule_funcs_SUITE's IoT cases), topic
filter lists, environment, process dictionary and key-value store."""
import pytest

from emqpy.rule_engine import funcs_msg
from emqpy.rule_engine.funcs import SQLFunctionError

from .funcs_helpers import call, call_with, eventmsg_publish, message


def test_msgid():
    assert call_with({}, "msgid") is None
    assert call_with(eventmsg_publish(), "msgid") == "0005F8F84FFF6C7EF44200000C8A0001"


def test_qos():
    assert call_with({}, "qos") is None
    assert call_with(message(), "qos") == 1


def test_flags():
    assert call_with(message(), "flags") == {"dup": False}
    assert call_with({}, "flags") == {}


def test_flag():
    msg = message()
    retained = message(flags={"dup": False, "retain": True})
    assert call_with(msg, "flag", "dup") is False
    assert call_with(retained, "flag", "retain") is True
    assert call_with({}, "flag", "retain") is None


def test_topic():
    msg = message()
    assert call_with(msg, "topic") == "topic/#"
    assert call_with(msg, "topic", 1) == "topic"
    assert call_with(msg, "topic", 2) == "#"


def test_topic_level_out_of_range_is_an_error():
    with pytest.raises(SQLFunctionError):
        call_with(message(), "topic", 3)
    with pytest.raises(SQLFunctionError):
        call_with(message(), "topic", 0)
    with pytest.raises(SQLFunctionError):
        call_with(message(), "topic", "1")


def test_clientid():
    assert call_with({}, "clientid") is None
    assert call_with(message(), "clientid") == "clientid"


def test_clientid_reads_the_from_field_which_events_do_not_have():
    # as in EMQX 5.8.1: the message.publish event map has `clientid`, not `from`
    assert call_with(eventmsg_publish(), "clientid") is None


def test_clientip():
    assert call_with({}, "clientip") is None
    assert call_with(eventmsg_publish(peerhost="127.0.0.1"), "clientip") == "127.0.0.1"


def test_peerhost():
    assert call_with({}, "peerhost") is None
    assert call_with(eventmsg_publish(peerhost="127.0.0.1"), "peerhost") == "127.0.0.1"


def test_username():
    assert call_with(eventmsg_publish(username="feng"), "username") == "feng"


def test_payload():
    assert call_with(message(payload="hello"), "payload") == "hello"
    nested = {"a": {"b": {"c": "c"}}}
    assert call_with(message(payload=nested), "payload", "a.b.c") == "c"


def test_payload_path_only_looks_into_a_map():
    assert call_with(message(payload='{"a": 1}'), "payload", "a") is None
    assert call_with(message(payload={"a": 1}), "payload", "b") is None


FILTERS = [{"topic": "t/a", "qos": 1}, {"topic": "t/+/b", "qos": 2}, {"topic": "$SYS/#"}]


def test_contains_topic():
    assert call("contains_topic", FILTERS, "t/a") is True
    assert call("contains_topic", FILTERS, "t/x/b") is False
    assert call("contains_topic", FILTERS, "t/+/b") is True
    assert call("contains_topic", [], "t/a") is False


def test_contains_topic_match_matches_each_filter_topic_against_the_argument():
    # emqx_topic:match(FilterTopic, Arg): the listed topic is the name, the argument the filter
    assert call("contains_topic_match", FILTERS, "t/#") is True
    assert call("contains_topic_match", FILTERS, "t/+") is True
    assert call("contains_topic_match", FILTERS, "x/#") is False
    assert call("contains_topic_match", FILTERS, "#") is True
    assert call("contains_topic_match", [{"topic": "$SYS/x"}], "#") is False


def test_contains_topic_with_qos_is_false_as_in_emqx():
    assert call("contains_topic", FILTERS, "t/a", 1) is False
    assert call("contains_topic_match", FILTERS, "t/#", 1) is False


def test_contains_topic_needs_a_list():
    with pytest.raises(SQLFunctionError):
        call("contains_topic", "t/a", "t/a")


def test_getenv(monkeypatch):
    monkeypatch.setenv("EMQXVAR_emqx_variform_bif_tests", "system_test")
    monkeypatch.setattr(funcs_msg, "_ENV_CACHE", {})
    assert call("getenv", "emqx_variform_bif_tests") == "system_test"
    assert call("getenv", "not_set_anywhere") == ""


def test_proc_dict_put_get_del():
    assert call("proc_dict_get", "abc") is None
    assert call("proc_dict_put", "abc", 1) is None
    assert call("proc_dict_get", "abc") == 1
    assert call("proc_dict_put", "abc", 2) == 1
    assert call("proc_dict_del", "abc") == 2
    assert call("proc_dict_get", "abc") is None


def test_proc_dict_follows_the_scope_the_runtime_sets():
    own: dict = {}
    token = funcs_msg.PROC_DICT.set(own)
    try:
        call("proc_dict_put", "k", "v")
        assert call("proc_dict_get", "k") == "v"
    finally:
        funcs_msg.PROC_DICT.reset(token)
    assert call("proc_dict_get", "k") is None
    assert list(own.values()) == ["v"]


def test_kv_store():
    assert call("kv_store_get", "key1") is None
    assert call("kv_store_get", "key1", "dflt") == "dflt"
    assert call("kv_store_put", "key1", {"a": 1}) is True
    assert call("kv_store_get", "key1") == {"a": 1}
    # keys match exactly, as in an ETS set: 1 and 1.0 are different keys
    call("kv_store_put", 1, "int")
    assert call("kv_store_get", 1.0) is None
    assert call("kv_store_del", "key1") is True
    assert call("kv_store_get", "key1") is None
    call("kv_store_del", 1)


def test_random_and_uuids():
    r = call("random")
    assert 0.0 <= r < 1.0
    u = call("uuid_v4")
    assert len(u) == 36 and u[14] == "4" and u.count("-") == 4
    assert u != call("uuid_v4")
    h = call("uuid_v4_no_hyphen")
    assert len(h) == 32 and int(h, 16) >= 0
