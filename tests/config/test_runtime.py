"""Runtime changes: dump (EMQX JSON form), update_root, save_cluster_override."""

import json
import math
import os
import pickle

import pytest

from emqpy.config import ConfigError, EmqxConfig, load_config, save_cluster_override, update_root, validate_config
from emqpy.config.schema import raw_config


def test_dump_is_json_with_emqx_strings():
    cfg = validate_config({"mqtt": {"max_inflight": 8, "idle_timeout": 60000, "max_packet_size": 65536}})
    d = cfg.dump()
    json.dumps(d, allow_nan=False)  # strict JSON: no Infinity/NaN leaks
    assert d["mqtt"]["max_inflight"] == 8
    assert d["mqtt"]["idle_timeout"] == "1m"  # integer ms given: canonical text
    assert d["mqtt"]["max_packet_size"] == "64KB"
    assert d["mqtt"]["retry_interval"] == "infinity"
    assert d["mqtt"]["server_keepalive"] == "disabled"
    assert d["listeners"]["tcp"]["default"]["bind"] == "0.0.0.0:1883"
    assert d["dashboard"]["listeners"]["http"]["bind"] == 18083
    assert "recbuf" not in d["listeners"]["tcp"]["default"]["tcp_options"]  # unset: left out
    assert "default_username" not in d["dashboard"]  # hidden in EMQX's API
    assert cfg.dump("mqtt") == d["mqtt"]


def test_dump_redacts_secrets_on_request():
    cfg = EmqxConfig()
    assert cfg.dump("node")["cookie"] == "emqxsecretcookie"
    assert cfg.dump("node", redact=True)["cookie"] == "******"
    assert cfg.dump("dashboard", redact=True)["default_password"] == "******"


def test_dump_unknown_root():
    with pytest.raises(ConfigError, match="^nope: unknown config root"):
        EmqxConfig().dump("nope")


def test_raw_round_trip():
    cfg = load_config(
        env={"EMQX_MQTT__IDLE_TIMEOUT": "90s", "EMQX_DASHBOARD__SAMPLE_INTERVAL": "5s"},
        overrides={"listeners": {"tcp": {"default": "marked_for_deletion", "x": {"bind": "::1:1"}}}},
        data_dir="unused-dir",
    )
    again = validate_config(raw_config(cfg))
    assert again == cfg
    assert again.dashboard.sample_interval == 5.0
    assert again.listeners.deleted == {"tcp": frozenset({"default"})}


def test_update_root_merges_validates_and_leaves_old_config_alone():
    cfg = EmqxConfig()
    new = update_root(cfg, "mqtt", {"max_inflight": 2, "idle_timeout": "20s"})
    assert new.mqtt.max_inflight == 2 and new.mqtt.idle_timeout == 20.0
    assert new.mqtt.max_qos_allowed == 2  # other keys kept
    assert cfg.mqtt.max_inflight == 32  # old config unchanged
    assert new.listeners is cfg.listeners  # other roots shared
    nested = update_root(new, "sysmon", {"vm": {"long_gc": "100ms"}})
    assert nested.sysmon.vm.long_gc == 0.1 and nested.sysmon.vm.long_schedule == 0.24
    assert nested.mqtt.max_inflight == 2


@pytest.mark.parametrize(
    "root, body, message",
    [
        ("mqtt", {"max_inflight": 0}, "mqtt.max_inflight: "),
        ("mqtt", {"bogus": 1}, "mqtt.bogus: unknown key"),
        ("mqtt", {"max_packet_size": "abc"}, "mqtt.max_packet_size: invalid byte size 'abc'"),
        ("sysmon", {"os": {"cpu_high_watermark": "150%"}}, "sysmon.os.cpu_high_watermark: "),
        ("listeners", {"tcp": {"default": {"bind": "nohost:1"}}}, "listeners.tcp.default.bind: "),
        ("mqtt", ["not", "an", "object"], "mqtt: expected an object"),
    ],
)
def test_update_root_errors_name_the_key(root, body, message):
    with pytest.raises(ConfigError) as ei:
        update_root(EmqxConfig(), root, body)
    assert str(ei.value).startswith(message)


def test_update_unmodelled_root_is_kept_raw():
    cfg = update_root(EmqxConfig(), "exhook", {"servers": []})
    assert cfg.dump("exhook") == {"servers": []}
    assert cfg.mqtt == EmqxConfig().mqtt


def test_save_and_reload(tmp_path):
    data_dir = str(tmp_path / "data")
    cfg = load_config(env={}, data_dir=data_dir)
    new = update_root(cfg, "mqtt", {"max_inflight": 3, "session_expiry_interval": "1h", "max_mqueue_len": "infinity"})
    path = save_cluster_override(data_dir, "mqtt", new.dump("mqtt", hidden=True))
    new2 = update_root(new, "retainer", {"max_payload_size": "2MB"})
    save_cluster_override(data_dir, "retainer", new2.dump("retainer", hidden=True))
    assert path == tmp_path / "data" / "configs" / "cluster.hocon"
    assert sorted(os.listdir(path.parent)) == ["cluster.hocon"]  # no temp files left behind

    reloaded = load_config(env={}, data_dir=data_dir)
    assert reloaded.mqtt == new2.mqtt
    assert reloaded.retainer == new2.retainer
    assert reloaded.mqtt.max_mqueue_len == math.inf
    assert reloaded.dump("mqtt")["session_expiry_interval"] == "1h"

    # saving the same root again replaces it and keeps the others
    save_cluster_override(data_dir, "mqtt", {"max_inflight": 4})
    again = load_config(env={}, data_dir=data_dir)
    assert again.mqtt.max_inflight == 4
    assert again.mqtt.session_expiry_interval == 7200.0
    assert again.retainer.max_payload_size == 2 * 1024 * 1024


def test_saved_strings_survive_verbatim(tmp_path):
    data_dir = str(tmp_path / "data")
    ssl = {"ssl_options": {"certfile": "${EMQX_ETC_DIR}/certs/cert.pem"}, "bind": "127.0.0.1:18084"}
    save_cluster_override(data_dir, "dashboard", {"listeners": {"https": ssl}})
    cfg = load_config(env={}, data_dir=data_dir)
    https = cfg.dashboard.listeners.https
    assert https.ssl_options.certfile == "${EMQX_ETC_DIR}/certs/cert.pem"
    assert https.bind.port == 18084


def test_config_is_frozen_and_picklable():
    cfg = load_config(env={"EMQX_MQTT__IDLE_TIMEOUT": "1h"}, data_dir="unused-dir")
    with pytest.raises(Exception):
        cfg.mqtt.max_inflight = 1
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone == cfg
    assert clone.dump("mqtt")["idle_timeout"] == "1h"
    assert clone.listeners.tcp["default"].bind.port == 1883


def test_commit_applies_and_persist_saves_for_the_next_start(tmp_path):
    """The one way the APIs change a running node: commit makes the config current (the broker
    re-reads its cached settings), persist saves the root to cluster.hocon."""
    from emqpy.config import commit, config_lock, persist
    from emqpy.config.loader import cluster_hocon_path
    from emqpy.testing import BrokerThread

    with BrokerThread(data_dir=str(tmp_path)) as bt:
        broker = bt.broker

        async def change():
            async with config_lock(broker):
                commit(broker, update_root(broker.config, "mqtt", {"max_inflight": 7}))
                await persist(broker, "mqtt")

        bt.call(change)
        assert broker.config.mqtt.max_inflight == 7
        assert broker.session_defaults[0] == 7  # the hot-path cache follows
    saved = load_config(env={}, data_dir=str(tmp_path))
    assert saved.mqtt.max_inflight == 7
    assert cluster_hocon_path(tmp_path).is_file()
