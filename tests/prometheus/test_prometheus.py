"""GET /prometheus/stats: Prometheus text (parsed with prometheus_client) and EMQX's JSON,
figures following real MQTT traffic; no authentication by default, as in EMQX."""
from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.mqttclient import uid
from support.servers import HttpServer, QuietHandler
from support.waiting import wait_until

LINE = re.compile(r'^(# (TYPE|HELP) [a-zA-Z_:][a-zA-Z0-9_:]* .*|'
                  r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? '
                  r'(-?[0-9.e+]+|NaN|[+-]Inf))$')


def _scrape(node, **params) -> tuple[str, dict]:
    r = httpx.get(node.api_url + "/prometheus/stats", params=params)  # no credentials
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in text.splitlines():
        assert LINE.match(line), line
    values = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            # the parser names counter samples <family>_total; the text has EMQX's plain name
            name = fam.name if fam.type == "counter" and s.name == fam.name + "_total" else s.name
            values[(name, tuple(sorted(s.labels.items())))] = s.value
    return text, values


def _v(values, name, **labels):
    return values[(name, tuple(sorted(labels.items())))]


def test_text_format_parses_with_emqx_names(node):
    text, values = _scrape(node)
    assert "# TYPE emqx_messages_received counter" in text
    assert "# TYPE emqx_connections_count gauge" in text
    for name in ("emqx_connections_count", "emqx_live_connections_count", "emqx_topics_count",
                 "emqx_retained_count", "emqx_cluster_sessions_count", "emqx_vm_cpu_use",
                 "emqx_vm_total_memory", "emqx_vm_used_memory", "emqx_cluster_nodes_running",
                 "emqx_bytes_received", "emqx_packets_connect", "emqx_messages_dropped_expired",
                 "emqx_session_created", "emqx_client_connected", "emqx_authentication_success",
                 "emqx_delivery_dropped", "emqx_authorization_allow",
                 # kept by authorization, as EMQX's emqx_authz keeps them
                 "emqx_authorization_superuser", "emqx_authorization_nomatch",
                 "emqx_authorization_matched_allow", "emqx_authorization_matched_deny"):
        assert (name, ()) in values, name
    assert "# TYPE emqx_authorization_matched_deny counter" in text
    assert _v(values, "emqx_cluster_nodes_running") == 1
    assert ("process_resident_memory_bytes", ()) not in values  # collectors are off
    assert 0 <= _v(values, "emqx_vm_cpu_use") <= 100


def test_text_figures_follow_traffic(node):
    _, v0 = _scrape(node)
    sub = node.mqtt(uid("psub"), version=4)
    topic = uid("prom/t")
    sub.subscribe(topic, 1)
    pub = node.mqtt(uid("ppub"), version=4)
    pub.publish(topic, b"z" * 50, qos=1)

    def moved():
        _, v = _scrape(node)
        return v if _v(v, "emqx_messages_sent") > _v(v0, "emqx_messages_sent") else None
    v1 = wait_until(moved)
    assert _v(v1, "emqx_connections_count") == _v(v0, "emqx_connections_count") + 2
    assert _v(v1, "emqx_messages_received") == _v(v0, "emqx_messages_received") + 1
    assert _v(v1, "emqx_messages_qos1_received") == _v(v0, "emqx_messages_qos1_received") + 1
    assert _v(v1, "emqx_bytes_received") >= _v(v0, "emqx_bytes_received") + 50
    assert _v(v1, "emqx_client_subscribe") == _v(v0, "emqx_client_subscribe") + 1
    assert _v(v1, "emqx_subscriptions_count") == _v(v0, "emqx_subscriptions_count") + 1


def test_unaggregated_mode_labels_node(node):
    _, values = _scrape(node, mode="all_nodes_unaggregated")
    assert ("emqx_connections_count", (("node", node.name),)) in values
    assert ("emqx_topics_count", ()) in values  # cluster-wide: never per node
    assert ("emqx_vm_used_memory", (("node", node.name),)) in values


def test_json_format(node):
    r = httpx.get(node.api_url + "/prometheus/stats", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert {"stats", "metrics", "packets", "messages", "delivery", "client", "session",
            "cluster", "acl", "authn", "certs", "olp"} <= set(body)
    stats = node.get("/stats", params={"aggregate": "true"})
    assert body["stats"]["emqx_topics_count"] == stats["topics.count"]
    assert body["messages"]["emqx_messages_received"] >= 0
    assert body["metrics"]["emqx_vm_total_memory"] > 0
    assert body["cluster"] == {"emqx_cluster_nodes_running": 1, "emqx_cluster_nodes_stopped": 0}
    un = httpx.get(node.api_url + "/prometheus/stats", params={"mode": "all_nodes_unaggregated"},
                   headers={"Accept": "application/json"}).json()
    assert isinstance(un["stats"], list) and un["stats"][0]["node"] == node.name


def test_bad_mode_is_400(node):
    r = httpx.get(node.api_url + "/prometheus/stats", params={"mode": "everything"})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"


DEFAULTS = {
    "enable_basic_auth": False,
    "push_gateway": {"enable": False, "url": "http://127.0.0.1:9091", "interval": "15s",
                     "headers": {}, "job_name": "${name}/instance/${name}~${host}"},
    "collectors": {c: "disabled" for c in ("vm_dist", "mnesia", "vm_statistics",
                                           "vm_system_info", "vm_memory", "vm_msacc")},
}


def test_settings_defaults_and_auth(node):
    assert node.get("/prometheus") == DEFAULTS
    assert httpx.get(node.api_url + "/prometheus").status_code == 401


def test_settings_validation(node):
    for body in ({"enable_basic_auth": "perhaps"}, {"push_gateway": {"interval": "soon"}},
                 {"collectors": {"vm_memory": "maybe"}}, {"unknown_key": 1}, [1, 2]):
        r = node.api.put("/prometheus", json=body)
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST", (body, r.text)
    r = node.api.put("/prometheus", content=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert node.get("/prometheus") == DEFAULTS  # nothing changed


class _Gateway(HttpServer):
    """A stand-in Pushgateway recording what is pushed to it."""

    def __init__(self):
        self.pushes: list[tuple[str, dict, str]] = []
        gw = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gw.pushes.append((self.path, dict(self.headers), body.decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
        super().__init__(Handler)


def test_push_gateway_settings_persist_and_push(make_broker, tmp_path):
    gw = _Gateway()
    try:
        n = make_broker(data_dir=tmp_path)
        url = gw.url()
        body = {"push_gateway": {"enable": True, "url": url, "interval": "1s",
                                 "headers": {"X-Token": "secret"}},
                "collectors": {"vm_memory": "enabled"}}
        got = n.api.put("/prometheus", json=body)
        assert got.status_code == 200, got.text
        want = {**DEFAULTS, "push_gateway": {**DEFAULTS["push_gateway"], **body["push_gateway"]},
                "collectors": {**DEFAULTS["collectors"], "vm_memory": "enabled"}}
        assert got.json() == want and n.get("/prometheus") == want
        n.mqtt(uid("pushed"), version=4)
        path, headers, text = wait_until(lambda: next(
            (p for p in gw.pushes if "emqx_connections_count 1" in p[2]), None))
        assert path == "/metrics/job/emqx/instance/emqx~127.0.0.1"
        assert headers.get("X-Token") == "secret"
        families = {f.name for f in text_string_to_metric_families(text)}
        assert {"emqx_connections_count", "emqx_messages_received",
                "process_resident_memory_bytes"} <= families
        # a partial update merges; the settings survive a restart
        assert n.api.put("/prometheus", json={"enable_basic_auth": True}).json()[
            "push_gateway"]["url"] == url
        n.restart()
        assert n.get("/prometheus") == {**want, "enable_basic_auth": True}
        count = len(gw.pushes)
        wait_until(lambda: len(gw.pushes) > count)  # pushing resumed after the restart
        n.api.put("/prometheus", json={"push_gateway": {"enable": False}})
    finally:
        gw.close()


def test_basic_auth_switch_and_collectors(make_broker):
    n = make_broker()
    scrape = n.api_url + "/prometheus/stats"
    assert httpx.get(scrape).status_code == 200
    assert n.api.put("/prometheus", json={"enable_basic_auth": True}).status_code == 200
    r = httpx.get(scrape)
    assert r.status_code == 401 and r.json()["code"] == "AUTHORIZATION_HEADER_ERROR"
    assert httpx.get(scrape, auth=("admin", "public")).status_code == 200
    # the legacy (pre-5.4) form is accepted and answered in the recommend form
    legacy = {"enable": False, "interval": "15s", "push_gateway_server": "http://127.0.0.1:9091",
              "job_name": "${name}/instance/${name}~${host}", "headers": {},
              "mnesia_collector": "enabled", "vm_dist_collector": "disabled",
              "vm_memory_collector": "disabled", "vm_msacc_collector": "disabled",
              "vm_statistics_collector": "enabled", "vm_system_info_collector": "enabled"}
    got = n.api.put("/prometheus", json=legacy).json()
    assert got["enable_basic_auth"] is False and got["collectors"]["mnesia"] == "enabled"
    _, values = _scrape(n)
    assert _v(values, "process_cpu_seconds") > 0  # the parser drops _total from the family name
    assert _v(values, "process_open_fds") > 0 and _v(values, "emqpy_store_size_bytes") > 0
    assert ("process_resident_memory_bytes", ()) not in values
