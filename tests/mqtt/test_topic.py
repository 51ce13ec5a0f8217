import pytest

from emqpy.broker.router import Route, Router
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import matches, parse_share, validate_topic_filter, validate_topic_name


@pytest.mark.parametrize("flt", ["a", "a/b", "+", "#", "a/+/c", "a/#", "+/+", "/", "$SYS/#", "a//b"])
def test_valid_filters(flt):
    validate_topic_filter(flt)


@pytest.mark.parametrize("flt", ["", "a/#/b", "a#", "a/b+", "#/a", "a\x00"])
def test_invalid_filters(flt):
    with pytest.raises(MQTTError):
        validate_topic_filter(flt)


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\x00b"])
def test_invalid_names(topic):
    with pytest.raises(MQTTError):
        validate_topic_name(topic)


def test_share_parsing():
    assert parse_share("$share/g/a/b") == ("g", "a/b", False)
    assert parse_share("$queue/a") == ("$queue", "a", False)
    assert parse_share("$exclusive/a") == (None, "a", True)
    assert parse_share("a/b") == (None, "a/b", False)
    for bad in ("$share/g", "$share//a", "$share/g+/a"):
        with pytest.raises(MQTTError):
            parse_share(bad)


CASES = [
    ("a/b", "a/b", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False), ("a/#", "a", True),
    ("a/#", "a/b/c", True), ("#", "a/b", True), ("+/+", "a/b", True), ("+", "/a", False),
    ("+/a", "/a", True), ("#", "$SYS/x", False), ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/x", True), ("a/+/c", "a//c", True), ("a/b", "a/b/", False),
    ("a/b/#", "a/b", True), ("+/#", "a", True),
]


@pytest.mark.parametrize("flt,topic,expected", CASES)
def test_match(flt, topic, expected):
    assert matches(flt, topic) is expected


def test_router_agrees_with_matches():
    r = Router()
    filters = sorted({f for f, _, _ in CASES})
    for f in filters:
        r.route_for(f).subs["x"] = object()
    for topic in {t for _, t, _ in CASES} | {"a", "b", "a/b/c/d", "$SYS", "$SYS/x/y"}:
        got = sorted(route.filter for route in r.match(topic))
        assert got == sorted(f for f in filters if matches(f, topic)), topic
    for f in filters:  # removing every route empties the trie
        route = r.route_for(f, create=False)
        route.subs.clear()
        r.drop_if_empty(route)
    assert r.routes == {} and r._root.children == {} and r.match("a/b") == ()
    assert isinstance(Route("x"), Route)
