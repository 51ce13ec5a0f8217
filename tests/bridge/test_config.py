"""The `connectors` and `actions` roots (EMQX's keys, defaults, aliases, names), the data
templates, and connectors/actions loaded from the config file at start."""
from __future__ import annotations

import json

import pytest

from emqpy.bridge.http import join_paths
from emqpy.config import ConfigError
from emqpy.config.schema import EmqxConfig, update_root
from emqpy.templates import Template
from support.servers import HttpSink
from support.waiting import wait_until


def test_defaults_are_emqx_s():
    cfg = update_root(EmqxConfig(), "connectors", {"http": {"c": {"url": "http://h:8080/p"}}})
    c = cfg.connectors.http["c"]
    assert (c.enable, c.pool_size, c.pool_type, c.enable_pipelining, c.connect_timeout) == \
        (True, 8, "random", 100, 15.0)
    assert c.headers["keep-alive"] == "timeout=5" and c.ssl.enable is False
    assert c.resource_opts.health_check_interval == 15.0
    cfg = update_root(cfg, "actions", {"http": {"a": {"connector": "c", "parameters": {}}}})
    a = cfg.actions.http["a"]
    ro = a.resource_opts
    assert (ro.worker_pool_size, ro.inflight_window, ro.request_ttl, ro.max_buffer_bytes,
            ro.query_mode) == (16, 100, 45.0, 256 << 20, "async")
    assert (a.parameters.method, a.parameters.max_retries, a.parameters.body) == ("post", 2, None)


def test_emqx_aliases_and_legacy_keys():
    cfg = update_root(EmqxConfig(), "actions", {"webhook": {"a": {
        "connector": "c", "parameters": {"method": "PUT"},
        "resource_opts": {"request_timeout": "10s", "async_inflight_window": 5,
                          "max_queue_bytes": "1MB", "start_timeout": "5s"}}}})
    a = cfg.actions.http["a"]
    assert a.parameters.method == "put"
    assert (a.resource_opts.request_ttl, a.resource_opts.inflight_window,
            a.resource_opts.max_buffer_bytes) == (10.0, 5, 1 << 20)
    assert cfg.dump("actions")["http"]["a"]["resource_opts"]["request_ttl"] == "10s"
    # hidden keys stay out of what the API shows, and in what is saved
    assert "buffer_mode" not in cfg.dump("actions")["http"]["a"]["resource_opts"]
    assert "buffer_mode" in cfg.dump("actions", hidden=True)["http"]["a"]["resource_opts"]


@pytest.mark.parametrize("root,value,where", [
    ("connectors", {"http": {"b@d": {"url": "http://h"}}}, "Invalid name format"),
    ("connectors", {"http": {"c": {"url": "h:80"}}}, "connectors.http.c.url"),
    ("connectors", {"http": {"c": {"url": "http://h", "pool_size": 0}}}, "pool_size"),
    ("actions", {"http": {"a": {"parameters": {}}}}, "connector"),
    ("actions", {"http": {"a": {"connector": "c", "parameters": {},
                                "resource_opts": {"batch_size": 10}}}}, "batch_size"),
    ("actions", {"http": {"a": {"connector": "c", "parameters": {},
                                "resource_opts": {"worker_pool_size": 2000}}}},
     "worker_pool_size"),
])
def test_bad_config_names_the_key(root, value, where):
    with pytest.raises(ConfigError) as e:
        update_root(EmqxConfig(), root, value)
    assert where in str(e.value)


def test_types_not_modelled_yet_are_kept():
    cfg = update_root(EmqxConfig(), "connectors", {"kafka_producer": {"k": {"x": 1}}})
    assert cfg.dump("connectors")["kafka_producer"] == {"k": {"x": 1}}


def test_mqtt_connector_and_action_as_emqx_reads_them():
    cfg = update_root(EmqxConfig(), "connectors", {"mqtt": {"m": {
        "server": "[::1]:1884", "mode": "cluster_shareload", "password": "s"}}})
    m = cfg.connectors.mqtt["m"]
    assert (m.proto_ver, m.keepalive, m.max_inflight, m.pool_size, m.clean_start) == \
        ("v4", 160, 32, 8, True)
    assert "mode" not in cfg.dump("connectors")["mqtt"]["m"]
    cfg = update_root(cfg, "actions", {"mqtt": {"a": {"connector": "m", "parameters": {
        "topic": "t/${topic}", "local": {"topic": "x"}}}}})
    p = cfg.actions.mqtt["a"].parameters
    assert (p.topic, p.qos, p.retain, p.payload) == ("t/${topic}", 1, False, None)
    for bad, where in ((("connectors", {"mqtt": {"m": {"server": "h:99999"}}}), "server"),
                       (("connectors", {"mqtt": {"m": {"server": "h", "proto_ver": "v6"}}}),
                        "proto_ver"),
                       (("actions", {"mqtt": {"a": {"connector": "m",
                                                     "parameters": {"topic": ""}}}}), "topic")):
        with pytest.raises(ConfigError) as e:
            update_root(EmqxConfig(), *bad)
        assert where in str(e.value)


def test_secrets_are_masked_in_redacted_dumps():
    cfg = update_root(EmqxConfig(), "connectors", {"http": {"c": {
        "url": "https://h", "headers": {"Authorization": "Bearer t", "X": "y"},
        "ssl": {"enable": True, "password": "kp"}}}})
    from emqpy.config.secrets import mask_secrets
    shown = mask_secrets(cfg.dump("connectors"))["http"]["c"]
    assert shown["headers"] == {"Authorization": "******", "X": "y"}
    assert shown["ssl"]["password"] == "******"


@pytest.mark.parametrize("template,expected", [
    ("${topic}", "t/1"),
    ("${payload.a.b}", "1"),
    ("${payload.list}", "[1,2]"),
    ("${payload.list.2}", "2"),          # EMQX indexes lists from 1
    ("${payload}", '{"a":{"b":1},"list":[1,2]}'),
    ("${missing}/${payload.nope}", "undefined/undefined"),
    ("${flag} ${num} ${none}", "true 1.5 undefined"),
    ("${clientid}", "from-envelope"),
    ("plain", "plain"),
])
def test_data_templates(template, expected):
    data = {"topic": "t/1", "payload": json.dumps({"a": {"b": 1}, "list": [1, 2]},
                                                  separators=(",", ":")),
            "flag": True, "num": 1.5, "none": None}
    assert Template(template).render(data, {"clientid": "from-envelope"}) == expected


def test_whole_data_template():
    data = {"x": 1, "s": "a"}
    assert json.loads(Template("${.}").render(data)) == data
    assert Template("${topic}/${payload.x}").names == {"topic", "payload"}


@pytest.mark.parametrize("base,path,joined", [
    ("http://h/api", "v1", "http://h/api/v1"),
    ("http://h/api/", "/v1", "http://h/api/v1"),
    ("http://h/api", "?a=1", "http://h/api?a=1"),
    ("http://h/api", "", "http://h/api"),
])
def test_url_join_is_emqx_s(base, path, joined):
    assert join_paths(base, path) == joined


def test_connectors_and_actions_from_the_config_file(make_broker):
    sink = HttpSink()
    try:
        node = make_broker({
            "connectors": {"http": {"c": {"url": sink.url("/in")}}},
            "actions": {"webhook": {"a": {"connector": "c",
                                          "parameters": {"body": "${payload}"}}}}})
        assert node.get("/connectors/http:c")["status"] == "connected"
        assert node.get("/actions/http:a")["status"] == "connected"
        results = []
        node.call(lambda: node.broker.bridges.send("http:a", {"payload": "hi"}, {},
                                                   results.append))
        wait_until(lambda: results == [True])
        assert [r["body"] for r in sink.requests()] == ["hi"]
    finally:
        sink.stop()
