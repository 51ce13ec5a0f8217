"""Built-in defaults equal EMQX 5.8.1's, read from its OpenAPI document."""

import json
import math
from pathlib import Path

import pytest

from emqpy.config import EmqxConfig
from emqpy.config import features as F
from emqpy.config import listeners as L
from emqpy.config import modules as M
from emqpy.config import sections as S

REFERENCE = Path("/work/shared/reference/emqx-5.8.1-openapi.json")
if not REFERENCE.is_file():  # the repo copy, if the lead vendors one
    REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "emqx-5.8.1-openapi.json"

pytestmark = pytest.mark.skipif(not REFERENCE.is_file(), reason="EMQX OpenAPI reference not available")


@pytest.fixture(scope="module")
def schemas():
    return json.loads(REFERENCE.read_text())["components"]["schemas"]


# reference schema -> (model, keys that are not config: status fields of the listener API)
MODELS = {
    "emqx.mqtt": (S.Mqtt, ()),
    "emqx.sys_topics": (S.SysTopics, ()),
    "emqx.event_names": (S.EventNames, ()),
    "emqx.broker": (S.Broker, ()),
    "emqx.flapping_detect": (S.FlappingDetect, ()),
    "emqx.alarm": (S.Alarm, ()),
    "emqx.sysmon": (S.Sysmon, ()),
    "emqx.sysmon_vm": (S.SysmonVm, ()),
    "emqx.sysmon_os": (S.SysmonOs, ()),
    "emqx.force_shutdown": (S.ForceShutdown, ()),
    "emqx.force_gc": (S.ForceGc, ()),
    "emqx.log": (S.Log, ()),
    "emqx.console_handler": (S.ConsoleHandler, ()),
    "emqx.log_file_handler": (S.FileHandler, ()),
    "emqx.log_throttling": (S.LogThrottling, ()),
    "retainer.retainer": (S.Retainer, ()),
    "modules.delayed": (M.Delayed, ()),
    "slow_subs.slow_subs": (M.SlowSubs, ()),
    "retainer.mnesia_config": (S.RetainerBackend, ()),
    "dashboard.dashboard": (L.Dashboard, ()),
    "dashboard.listeners": (L.DashboardListeners, ()),
    "dashboard.https": (L.DashboardHttps, ()),
    "dashboard.ssl_options": (L.ServerSslOptions, ()),
    "emqx.tcp_opts": (L.TcpOptions, ()),
    "emqx.ws_opts": (L.WebsocketOptions, ()),
    "emqx.deflate_opts": (L.DeflateOptions, ()),
    "emqx.listener_ssl_opts": (L.ListenerSslOptions, ()),
    "emqx.listener_wss_opts": (L.ServerSslOptions, ()),
    "emqx.ocsp": (L.Ocsp, ()),
    "opentelemetry.opentelemetry": (F.OpenTelemetry, ()),
    "opentelemetry.otel_metrics": (F.OtelMetrics, ()),
    "opentelemetry.otel_logs": (F.OtelLogs, ()),
    "opentelemetry.otel_traces": (F.OtelTraces, ()),
    "opentelemetry.trace_filter": (F.OtelTraceFilter, ()),
    "opentelemetry.otel_exporter": (F.OtelExporter, ()),
    "listeners.tcp_not_required_bind": (L.TcpListener, ("id", "type", "running", "current_connections")),
    "listeners.ssl_not_required_bind": (L.SslListener, ("id", "type", "running", "current_connections")),
    "listeners.ws_not_required_bind": (L.WsListener, ("id", "type", "running", "current_connections")),
    "listeners.wss_not_required_bind": (L.WssListener, ("id", "type", "running", "current_connections")),
}


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isinf(a):
        return math.isinf(b)
    return a == b


@pytest.mark.parametrize("ref_name", sorted(MODELS))
def test_every_key_and_default_matches(schemas, ref_name):
    model, not_config = MODELS[ref_name]
    props = schemas[ref_name]["properties"]
    ours = model()
    for key, spec in props.items():
        if key in not_config:
            continue
        assert key in model.model_fields, f"{ref_name}.{key} missing"
        if "$ref" in spec:
            continue
        if "default" not in spec:
            assert getattr(ours, key) is None, f"{ref_name}.{key} should be unset by default"
            continue
        expected = getattr(model.model_validate({key: spec["default"]}), key)
        assert _same(getattr(ours, key), expected), f"{ref_name}.{key}: {getattr(ours, key)!r} != {expected!r}"


def test_mqtt_dump_is_emqx_defaults_verbatim(schemas):
    # What GET /api/v5/configs shows for an untouched `mqtt` root.
    props = schemas["emqx.mqtt"]["properties"]
    # (plus emqpy's own keys, each documented as an extension in the schema)
    dumped = EmqxConfig().dump("mqtt")
    assert set(dumped) == set(props) | S.Mqtt.extension_fields
    for key, spec in props.items():
        assert dumped[key] == spec["default"], key
    schema = S.Mqtt.model_json_schema()["properties"]
    for key in S.Mqtt.extension_fields:
        assert key not in props and schema[key]["x-emqpy-extension"] is True


def test_dashboard_http_bind_is_the_shipped_emqx_conf_value(schemas):
    # EMQX's schema default is 0 (disabled) but every EMQX install ships
    # `dashboard.listeners.http.bind = 18083`; emqpy without a config file
    # behaves like that install.  Everything else is the schema default.
    assert schemas["dashboard.http"]["properties"]["bind"]["default"] == 0
    http = EmqxConfig().dashboard.listeners.http
    assert http.bind.port == 18083 and not http.bind.disabled
    for key, spec in schemas["dashboard.http"]["properties"].items():
        if key != "bind":
            assert getattr(http, key) == getattr(L.DashboardHttp.model_validate({key: spec["default"]}), key)


def test_durable_sessions_are_on_by_default(schemas):
    # EMQX's schema default is enable = false (its durable storage is experimental); emqpy's
    # promise is that persistent sessions survive a restart or kill -9 unless switched off
    # (emqpy/durable). Every other key is EMQX's default.
    ref = schemas["emqx.durable_sessions"]["properties"]
    assert ref["enable"]["default"] is False
    ours = EmqxConfig().durable_sessions
    assert ours.enable is True
    assert set(ref) == set(S.DurableSessions.model_fields)
    for key, spec in ref.items():
        if key != "enable":
            assert getattr(ours, key) == getattr(
                S.DurableSessions.model_validate({key: spec["default"]}), key), key


def test_parsed_forms():
    cfg = EmqxConfig()
    m = cfg.mqtt
    assert m.idle_timeout == 15.0
    assert m.max_packet_size == 1024 * 1024
    assert m.retry_interval == math.inf
    assert m.message_expiry_interval == math.inf
    assert m.max_subscriptions == math.inf
    assert m.server_keepalive is None
    assert m.mqueue_priorities is None
    assert m.session_expiry_interval == 7200.0
    assert m.await_rel_timeout == 300.0
    assert cfg.sys_topics.sys_msg_interval == 60.0
    assert cfg.sysmon.vm.long_gc is None
    assert cfg.sysmon.vm.large_heap == 32 * 1024 * 1024
    assert cfg.sysmon.os.cpu_high_watermark == 0.8
    assert cfg.dashboard.token_expired_time == 3600.0
    assert cfg.dashboard.allow_user_basic_auth is True
    assert cfg.node.name == "emqx@127.0.0.1"
    assert cfg.node.data_dir == "data"
    assert cfg.node.cookie == "emqxsecretcookie"
    assert cfg.api_key.bootstrap_file == ""
    assert cfg.log.console.level == "warning"
    assert cfg.retainer.max_payload_size == 1024 * 1024
    # plain values: the broker reads them once per connection
    assert type(m.max_inflight) is int and isinstance(m.idle_timeout, float)


def test_four_default_listeners():
    ls = EmqxConfig().listeners
    assert list(ls.tcp) == ["default"]
    bind = ls.tcp["default"].bind
    assert bind == "0.0.0.0:1883" and (bind.host, bind.port) == ("0.0.0.0", 1883)
    assert [(t, list(getattr(ls, t)), getattr(ls, t)["default"].bind.port)
            for t in ("ssl", "ws", "wss")] == [
        ("ssl", ["default"], 8883), ("ws", ["default"], 8083), ("wss", ["default"], 8084)]
    assert ls.ws["default"].websocket.mqtt_path == "/mqtt"
    assert ls.wss["default"].websocket.mqtt_path == "/mqtt"
    ssl = ls.ssl["default"].ssl_options
    assert (ssl.certfile, ssl.keyfile, ssl.cacertfile) == (
        "${EMQX_ETC_DIR}/certs/cert.pem", "${EMQX_ETC_DIR}/certs/key.pem",
        "${EMQX_ETC_DIR}/certs/cacert.pem")
    assert ls.tcp["default"].tcp_options.send_timeout == 15.0
