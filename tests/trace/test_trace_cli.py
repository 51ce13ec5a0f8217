"""`emqpy ctl trace` and `emqpy ctl traces`, run by the broker as the ctl process asks it
(emqx_mgmt_cli's output)."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.waiting import wait_until

pytestmark = pytest.mark.emqpy_only


def ctl(node, *args: str) -> tuple[int, str]:
    r = node.ok("POST", "/emqpy/ctl", json={"args": list(args)})
    return r["status"], r["output"]


def test_trace_start_list_stop(broker, tmp_path):
    assert ctl(broker, "trace", "list") == (0, "Trace is empty\n")
    path = tmp_path / "client.log"
    assert ctl(broker, "trace", "start", "client", "cli-client", str(path)) == \
        (0, "trace cli-client CLI-cli-client successfully\n")
    assert ctl(broker, "trace", "start", "client", "cli-client", str(path))[1] == \
        "[error] trace cli-client CLI-cli-client: already_exist\n"
    assert ctl(broker, "trace", "list") == \
        (0, f'Trace(clientid=cli-client, level=debug, destination="{path}")\n')
    c = broker.mqtt("cli-client")
    c.publish("cli/t", b"via-ctl", qos=1)
    c.disconnect()
    wait_until(lambda: path.is_file() and "DISCONNECT" in path.read_text())
    assert "Topic=cli/t, PacketId=1, Payload=via-ctl" in path.read_text()
    assert ctl(broker, "trace", "stop", "client", "cli-client") == \
        (0, "stop tracing clientid cli-client successfully\n")
    assert "msg: trace_stopping" in path.read_text().splitlines()[-1]
    assert ctl(broker, "trace", "stop", "client", "cli-client") == \
        (0, "[error] stop tracing clientid cli-client: not_found\n")
    assert broker.broker.tracer is None
    # a level above debug keeps the packets (debug events) out
    quiet = tmp_path / "quiet.log"
    assert ctl(broker, "trace", "start", "topic", "q/#", str(quiet), "warning", "json")[0] == 0
    broker.mqtt("q-client").publish("q/1", b"x", qos=1)
    ctl(broker, "trace", "stop", "topic", "q/#")
    assert not quiet.exists()
    status, out = ctl(broker, "trace", "start", "nonsense")
    assert status == 1 and "trace start client <ClientId> <File>" in out


def test_traces_start_list_stop_delete(broker):
    assert ctl(broker, "traces", "list") == (0, "Cluster Trace is empty\n")
    assert ctl(broker, "traces", "start", "ctl_trace", "client", "c1", "60") == \
        (0, "cluster_trace clientid c1 ctl_trace successfully\n")
    assert ctl(broker, "traces", "list") == \
        (0, f"Trace(ctl_trace: clientid=c1, running, LogSize:#{{'{broker.name}' => 0}})\n")
    [t] = broker.get("/trace")
    assert t["name"] == "ctl_trace" and t["clientid"] == "c1"
    out = ctl(broker, "traces", "start", "ctl_trace", "client", "c2")[1]
    assert out == '[error] cluster_trace ctl_trace clientid=c2 "ctl_trace Already Exists"\n'
    assert ctl(broker, "traces", "stop", "ctl_trace") == \
        (0, "Stop cluster_trace ctl_trace successfully\n")
    assert broker.get("/trace")[0]["status"] == "stopped"
    assert ctl(broker, "traces", "delete", "ctl_trace") == \
        (0, "Del cluster_trace ctl_trace successfully\n")
    assert ctl(broker, "traces", "delete", "ctl_trace") == \
        (0, "[error] Del cluster_trace ctl_trace: not_found\n")


def test_emqpy_ctl_trace_writes_where_the_operator_is(tmp_path, monkeypatch):
    import emqpy
    from support.mqttclient import MqttClient
    from support.process import Proc

    # (the ctl process runs elsewhere than the tests: it must still import this emqpy)
    root = Path(emqpy.__file__).resolve().parents[1]
    proc = Proc(tmp_path / "data", env={"PYTHONPATH": str(root)}).start()
    try:
        monkeypatch.chdir(tmp_path)
        assert proc.out("trace", "start", "client", "ctl-traced", "here.log") == \
            "trace ctl-traced CLI-ctl-traced successfully\n"
        assert proc.out("trace", "list") == \
            f'Trace(clientid=ctl-traced, level=debug, destination="{tmp_path / "here.log"}")\n'
        c = MqttClient("127.0.0.1", proc.mqtt_port, "ctl-traced")
        try:
            c.connect()
            c.disconnect()
        finally:
            c.close()
        log = tmp_path / "here.log"
        wait_until(lambda: log.is_file() and "DISCONNECT" in log.read_text())
        assert proc.out("trace", "stop", "client", "ctl-traced") == \
            "stop tracing clientid ctl-traced successfully\n"
        r = proc.ctl("trace", "start")
        assert r.returncode == 1 and "trace stop  client <ClientId>" in r.stdout
    finally:
        proc.stop()
