"""load_config: HOCON files, EMQX_* environment overrides, layer precedence, errors."""

import math
import textwrap

import pytest

from emqpy.config import ConfigError, load_config, save_cluster_override, validate_config
from emqpy.config.loader import parse_hocon_file


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


def test_no_file_gives_defaults(data_dir):
    cfg = load_config(env={}, data_dir=data_dir)
    assert cfg.mqtt.max_inflight == 32
    assert cfg.node.data_dir == data_dir


def test_emqx_style_conf_file(tmp_path, data_dir):
    conf = write(
        tmp_path / "etc" / "emqx.conf",
        """
        node {
          name = "emqx@127.0.0.1"
          cookie = "mysecret"
          data_dir = "data"
          process_limit = 2097152
        }
        cluster { name = emqxcl, discovery_strategy = manual }
        mqtt {
          idle_timeout = 1h30m
          max_packet_size = 2MB
          session_expiry_interval = 7200s
          retry_interval = 30s
          max_mqueue_len = infinity
          server_keepalive = 60
          mqueue_priorities { "a/b" = 10 }
        }
        sys_topics.sys_msg_interval = disabled
        listeners.tcp.default { bind = "127.0.0.1:1884", max_connections = 1024 }
        listeners.tcp.extra { bind = 1885 }
        dashboard.listeners.http.bind = "127.0.0.1:0"
        log.console.level = info
        """,
    )
    cfg = load_config(conf, env={}, data_dir=data_dir)
    m = cfg.mqtt
    assert m.idle_timeout == 5400.0
    assert m.max_packet_size == 2 * 1024 * 1024
    assert m.session_expiry_interval == 7200.0
    assert m.retry_interval == 30.0
    assert m.max_mqueue_len == math.inf
    assert m.server_keepalive == 60
    assert m.mqueue_priorities == {"a/b": 10}
    assert cfg.sys_topics.sys_msg_interval is None
    assert cfg.node.cookie == "mysecret"
    tcp = cfg.listeners.tcp
    assert (tcp["default"].bind.host, tcp["default"].bind.port) == ("127.0.0.1", 1884)
    assert tcp["default"].max_connections == 1024
    assert (tcp["extra"].bind.host, tcp["extra"].bind.port) == ("0.0.0.0", 1885)
    http = cfg.dashboard.listeners.http.bind
    assert (http.host, http.port, http.disabled) == ("127.0.0.1", 0, False)
    assert cfg.log.console.level == "info"
    assert cfg.cluster.name == "emqxcl"
    assert cfg.dump("cluster") == {
        "name": "emqxcl", "discovery_strategy": "manual", "static": {"seeds": []},
        "nats": {"servers": [], "host": "", "client_port": 0, "cluster_port": 0,
                 "tls": {"enable": False, "verify": "verify_peer"}},
        "join_port": 0}
    # as written, like EMQX's GET /configs
    assert cfg.dump("mqtt")["idle_timeout"] == "1h30m"
    assert cfg.dump("mqtt")["session_expiry_interval"] == "7200s"


def test_include_and_substitution(tmp_path, data_dir, monkeypatch):
    write(tmp_path / "etc" / "more.conf", "mqtt.max_inflight = 7\n")
    monkeypatch.setenv("EMQPY_TEST_TOPIC_LEVELS", "12")
    conf = write(
        tmp_path / "etc" / "emqx.conf",
        """
        include "more.conf"
        base_alias = 2MB
        mqtt.max_packet_size = ${base_alias}
        mqtt.max_topic_levels = ${?EMQPY_TEST_TOPIC_LEVELS}
        """,
    )
    cfg = load_config(conf, env={}, data_dir=data_dir)
    assert cfg.mqtt.max_inflight == 7
    assert cfg.mqtt.max_packet_size == 2 * 1024 * 1024
    assert cfg.mqtt.max_topic_levels == 12


def test_env_overrides(data_dir):
    env = {
        "EMQX_MQTT__MAX_PACKET_SIZE": "2MB",
        "EMQX_LISTENERS__TCP__DEFAULT__BIND": "0.0.0.0:1884",
        "EMQX_NODE__NAME": "a@b",
        "EMQX_NODE__COOKIE": "c00kie",
        "EMQX_MQTT__RETAIN_AVAILABLE": "false",
        "EMQX_MQTT__MAX_INFLIGHT": "5",
        "EMQX_MQTT__IDLE_TIMEOUT": "30s",
        "EMQX_MQTT__KEEPALIVE_MULTIPLIER": "2.5",
        "EMQX_DASHBOARD__LISTENERS__HTTP__BIND": "18084",
        "EMQX_ALARM__ACTIONS": '["log"]',
        "EMQX_SYSMON__OS": "{cpu_high_watermark = \"90%\"}",
    }
    cfg = load_config(env=env, data_dir=data_dir)
    assert cfg.mqtt.max_packet_size == 2 * 1024 * 1024
    assert cfg.listeners.tcp["default"].bind.port == 1884
    assert cfg.node.name == "a@b"
    assert cfg.node.cookie == "c00kie"
    assert cfg.mqtt.retain_available is False
    assert cfg.mqtt.max_inflight == 5
    assert cfg.mqtt.idle_timeout == 30.0
    assert cfg.mqtt.keepalive_multiplier == 2.5
    assert cfg.dashboard.listeners.http.bind.port == 18084
    assert cfg.alarm.actions == ["log"]
    assert cfg.sysmon.os.cpu_high_watermark == 0.9
    assert cfg.sysmon.os.cpu_low_watermark == 0.6  # the rest of the object keeps its defaults


def test_env_ipv6_bind_is_taken_as_a_string(data_dir):
    # "[::]:1883" is not a HOCON value; EMQX then uses the raw text.
    cfg = load_config(env={"EMQX_LISTENERS__TCP__DEFAULT__BIND": "[::]:1883"}, data_dir=data_dir)
    assert cfg.listeners.tcp["default"].bind.host == "::"


def test_env_vars_that_are_not_config_are_ignored(data_dir):
    env = {
        "EMQX_LOG_DIR": "/var/log/emqx",  # unknown root: ignored
        "EMQX_NODE_NAME": "x",  # single underscore: not a path
        "EMQX_RULE_ENGINE__RULES__R1__SQL": "SELECT 1",  # a root emqpy does not model
        "EMQX_MQTT__NO_SUCH_KEY": "1",  # known root, unknown key: warned and dropped
        "EMQX_": "1",
        "PATH": "/bin",
        "emqx_mqtt__max_inflight": "3",  # prefix is case-sensitive
    }
    cfg = load_config(env=env, data_dir=data_dir)
    assert cfg.mqtt.max_inflight == 32
    assert cfg.model_extra == {}


def test_env_bad_value_names_the_key(data_dir):
    with pytest.raises(ConfigError) as ei:
        load_config(env={"EMQX_MQTT__MAX_PACKET_SIZE": "abc"}, data_dir=data_dir)
    assert str(ei.value) == "mqtt.max_packet_size: invalid byte size 'abc'"
    assert ei.value.path == "mqtt.max_packet_size"


def test_precedence(tmp_path, data_dir):
    # defaults < cluster.hocon < emqx.conf < EMQX_* env < overrides
    save_cluster_override(
        data_dir, "mqtt", {"max_inflight": 2, "max_topic_levels": 2, "max_topic_alias": 2, "max_clientid_len": 100}
    )
    conf = write(tmp_path / "emqx.conf", "mqtt { max_topic_levels = 3, max_topic_alias = 3, max_clientid_len = 300 }\n")
    env = {"EMQX_MQTT__MAX_TOPIC_ALIAS": "4", "EMQX_MQTT__MAX_CLIENTID_LEN": "400"}
    cfg = load_config(conf, env=env, overrides={"mqtt": {"max_clientid_len": 500}}, data_dir=data_dir)
    assert cfg.mqtt.max_inflight == 2  # cluster.hocon over defaults
    assert cfg.mqtt.max_topic_levels == 3  # emqx.conf over cluster.hocon
    assert cfg.mqtt.max_topic_alias == 4  # env over emqx.conf
    assert cfg.mqtt.max_clientid_len == 500  # overrides last
    assert cfg.mqtt.max_qos_allowed == 2  # untouched keys keep defaults


def test_data_dir_from_env_or_conf(tmp_path):
    dd = str(tmp_path / "d1")
    save_cluster_override(dd, "mqtt", {"max_inflight": 9})
    assert load_config(env={"EMQX_NODE__DATA_DIR": dd}).mqtt.max_inflight == 9
    conf = write(tmp_path / "emqx.conf", f'node.data_dir = "{dd}"\n')
    cfg = load_config(conf, env={})
    assert cfg.mqtt.max_inflight == 9 and cfg.node.data_dir == dd
    cfg = load_config(env={}, overrides={"node": {"data_dir": dd}})
    assert cfg.mqtt.max_inflight == 9


@pytest.mark.parametrize(
    "conf, message",
    [
        ("mqtt.max_packet_size = abc", "mqtt.max_packet_size: invalid byte size 'abc'"),
        ("mqtt.idle_timeout = 15x", "mqtt.idle_timeout: invalid duration '15x'"),
        ("mqtt.no_such_key = 1", "mqtt.no_such_key: unknown key"),
        ("mqtt.max_qos_allowed = 3", "mqtt.max_qos_allowed: "),
        ("mqtt.max_inflight = true", "mqtt.max_inflight: "),
        ("mqtt.shared_subscription_strategy = fastest", "mqtt.shared_subscription_strategy: "),
        ("listeners.tcp.default.bind = \"example.com:1883\"", "listeners.tcp.default.bind: invalid bind"),
        ("listeners.tcp.default.tcp_options.buffer = 4XB", "listeners.tcp.default.tcp_options.buffer: invalid byte size"),
        ("dashboard.token_expired_time = soon", "dashboard.token_expired_time: invalid duration 'soon'"),
        ("sys_topics.sys_event_messages.client_connected = maybe", "sys_topics.sys_event_messages.client_connected: "),
        ("node.name = noatsign", "node.name: "),
        ("retainer.max_payload_size = -1", "retainer.max_payload_size: "),
    ],
)
def test_bad_values_name_the_key(tmp_path, data_dir, conf, message):
    path = write(tmp_path / "emqx.conf", conf + "\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path, env={}, data_dir=data_dir)
    text = str(ei.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_rpc_keys_as_emqx_names_them(tmp_path, data_dir):
    """rpc.protocol (alias driver) = ssl turns TLS between nodes on and needs the three files;
    the env form works too."""
    assert load_config(env={}, data_dir=data_dir).rpc.protocol == "tcp"
    path = write(tmp_path / "emqx.conf", textwrap.dedent("""\
        rpc { driver = ssl, certfile = "etc/node.pem", keyfile = "etc/node.key",
              cacertfile = "etc/ca.pem", tcp_server_port = 5370, connect_timeout = 2s }
        """))
    rpc = load_config(path, env={}, data_dir=data_dir).rpc
    assert (rpc.protocol, rpc.certfile, rpc.cacertfile) == ("ssl", "etc/node.pem", "etc/ca.pem")
    assert (rpc.server_port, rpc.connect_timeout) == (5370, 2.0)
    env = {"EMQX_RPC__PROTOCOL": "ssl", "EMQX_RPC__CERTFILE": "a.pem",
           "EMQX_RPC__KEYFILE": "a.key", "EMQX_RPC__CACERTFILE": "ca.pem"}
    assert load_config(env=env, data_dir=data_dir).rpc.keyfile == "a.key"
    env.pop("EMQX_RPC__CACERTFILE")
    with pytest.raises(ConfigError, match=r"^rpc: cacertfile is required with protocol = ssl"):
        load_config(env=env, data_dir=data_dir)
    with pytest.raises(ConfigError, match=r"^rpc\.protocol: "):
        load_config(env={"EMQX_RPC__PROTOCOL": "quic"}, data_dir=data_dir)


def test_bad_override_names_the_key(data_dir):
    with pytest.raises(ConfigError, match=r"^mqtt\.max_inflight: "):
        load_config(env={}, overrides={"mqtt": {"max_inflight": "lots"}}, data_dir=data_dir)


def test_hocon_syntax_error_is_one_line(tmp_path, data_dir):
    path = write(tmp_path / "emqx.conf", "mqtt {\n  max_inflight = 3\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path, env={}, data_dir=data_dir)
    assert "emqx.conf" in str(ei.value) and "\n" not in str(ei.value)


def test_missing_file(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.conf", env={}, data_dir=data_dir)


def test_marked_for_deletion_removes_default_listener(tmp_path, data_dir):
    path = write(tmp_path / "emqx.conf", 'listeners.tcp.default = marked_for_deletion\nlisteners.tcp.other.bind = "127.0.0.1:0"\n')
    cfg = load_config(path, env={}, data_dir=data_dir)
    assert list(cfg.listeners.tcp) == ["other"]
    assert cfg.dump("listeners")["tcp"]["default"] == "marked_for_deletion"


def test_deprecated_and_hidden_keys_are_accepted(tmp_path, data_dir):
    path = write(
        tmp_path / "emqx.conf",
        """
        mqtt.keepalive_backoff = 1.0
        broker.perf.trie_compaction = true
        node.global_gc_interval = 15m
        retainer.deliver_rate = "500/s"
        listeners.tcp.default.limiter { }
        dashboard.listeners.http.enable = true
        """,
    )
    cfg = load_config(path, env={}, data_dir=data_dir)
    assert cfg.mqtt.keepalive_multiplier == 2.0  # EMQX: 2 x backoff
    assert cfg.retainer.delivery_rate == "500/s"
    assert "keepalive_backoff" not in cfg.dump("mqtt")


def test_durations_are_not_turned_into_timedeltas(tmp_path, data_dir):
    # pyhocon alone would parse 100ns / 2w as periods; EMQX reads text.
    path = write(tmp_path / "emqx.conf", "mqtt.idle_timeout = 2w\nmqtt.await_rel_timeout = 100ns\n")
    with pytest.raises(ConfigError, match=r"^mqtt\.await_rel_timeout: invalid duration '100ns'"):
        load_config(path, env={}, data_dir=data_dir)


def test_env_whole_object_then_specific_key(data_dir):
    # Applied in name order, so the more specific variable wins, as in EMQX.
    env = {"EMQX_MQTT": "{max_inflight = 3, max_topic_levels = 9}", "EMQX_MQTT__MAX_INFLIGHT": "4"}
    cfg = load_config(env=env, data_dir=data_dir)
    assert (cfg.mqtt.max_inflight, cfg.mqtt.max_topic_levels) == (4, 9)


def test_several_problems_still_one_line(data_dir):
    with pytest.raises(ConfigError) as ei:
        load_config(env={}, overrides={"mqtt": {"max_inflight": 0, "max_qos_allowed": 7}}, data_dir=data_dir)
    # the first problem in schema order is named; the rest are counted
    assert str(ei.value).startswith("mqtt.max_qos_allowed: ") and str(ei.value).endswith("(and 1 more problem)")


def test_feature_roots_are_typed_with_emqx_defaults(data_dir):
    """prometheus, cluster and overload_protection are models: defaults in one place, env vars
    reach them, and a bad value stops loading with its key named."""
    cfg = load_config(env={"EMQX_PROMETHEUS__PUSH_GATEWAY__INTERVAL": "30s",
                           "EMQX_CLUSTER__NAME": "c1"}, data_dir=data_dir)
    assert cfg.prometheus.push_gateway.interval == 30.0
    assert cfg.prometheus.enable_basic_auth is False and cfg.overload_protection.enable is False
    assert cfg.cluster.name == "c1"
    with pytest.raises(ConfigError, match=r"^prometheus\.collectors\.vm_memory: "):
        validate_config({"prometheus": {"collectors": {"vm_memory": "maybe"}}})
    with pytest.raises(ConfigError, match=r"^prometheus\.push_gateway\.interval: must be greater"):
        validate_config({"prometheus": {"interval": "0s"}})  # the deprecated flat form


def test_prometheus_legacy_form_is_converted():
    cfg = validate_config({"prometheus": {"enable": True, "push_gateway_server": "http://gw:1",
                                          "vm_memory_collector": "enabled"}})
    assert cfg.dump("prometheus")["push_gateway"]["url"] == "http://gw:1"
    assert cfg.prometheus.push_gateway.enable and cfg.prometheus.collectors.vm_memory == "enabled"


def test_login_lockout_keys_are_accepted_and_hidden():
    cfg = validate_config({"dashboard": {"unsuccessful_login_max_attempts": 3,
                                         "unsuccessful_login_lock_duration": "1m"}})
    assert cfg.dashboard.unsuccessful_login_max_attempts == 3
    assert cfg.dashboard.unsuccessful_login_lock_duration == 60.0
    assert "unsuccessful_login_max_attempts" not in cfg.dump("dashboard")


def test_authentication_and_authorization_roots(data_dir):
    """Array roots from env vars as EMQX spells them; settings checked at load."""
    cfg = load_config(env={"EMQX_AUTHENTICATION__1__MECHANISM": "password_based",
                           "EMQX_AUTHENTICATION__1__BACKEND": "built_in_database",
                           "EMQX_AUTHENTICATION__1__USER_ID_TYPE": "clientid",
                           "EMQX_AUTHORIZATION__NO_MATCH": "deny"}, data_dir=data_dir)
    assert [(a.mechanism, a.backend) for a in cfg.authentication] == [
        ("password_based", "built_in_database")]
    assert cfg.dump("authentication")[0]["user_id_type"] == "clientid"  # kept as given
    assert cfg.authorization.no_match == "deny" and cfg.authorization.cache.ttl == 60.0
    assert validate_config({}).dump("authentication") == []
    with pytest.raises(ConfigError, match=r"^authorization\.cache\.max_size: "):
        validate_config({"authorization": {"cache": {"max_size": 0}}})
    with pytest.raises(ConfigError, match=r"^authentication\.0\.mechanism: required key missing"):
        validate_config({"authentication": [{"backend": "http"}]})


def test_cluster_hocon_keeps_keys_that_are_not_plain_names(tmp_path):
    # A name with a dot, a colon, '@', '$' or a non-ASCII letter is one key (quoted in the
    # file), not a path: it comes back as written after a restart.
    rules = {"a.b": {"sql": "x"}, "r:1": {"sql": "y"}, "é$x@y": {"sql": "z"}, "plain": {}}
    save_cluster_override(tmp_path, "rule_engine", {"rules": rules})
    assert parse_hocon_file(tmp_path / "configs" / "cluster.hocon") == {
        "rule_engine": {"rules": rules}}
