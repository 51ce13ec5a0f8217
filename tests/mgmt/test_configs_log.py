"""`GET/PUT /configs/log` on `python -m emqpy start`: the file handler the config names gets the
broker's log lines, and a change takes effect without a restart."""
from __future__ import annotations

import json

import pytest

from emqpy.config.loader import parse_hocon_string
from support.mqttclient import MqttClient
from support.process import Proc
from support.waiting import wait_until

pytestmark = pytest.mark.emqpy_only


def refused(proc, clientid: str) -> None:
    """A banned client's CONNECT: the broker logs the refusal at info level."""
    c = MqttClient("127.0.0.1", proc.mqtt_port, clientid)
    try:
        c.connect(expect_rc=None)
    finally:
        c.close()


def test_file_handler_follows_the_log_root_at_run_time(tmp_path):
    path = tmp_path / "logs" / "emqx.log"
    proc = Proc(tmp_path / "data", env={
        "EMQX_LOG__FILE__DEFAULT__ENABLE": "true", "EMQX_LOG__FILE__DEFAULT__LEVEL": "info",
        "EMQX_LOG__FILE__DEFAULT__PATH": str(path)}).start()
    try:
        with proc.api() as api:
            text = path.read_text()
            assert "[info] emqpy.broker: emqpy " in text and " started as emqx@" in text
            log = api.get("/configs/log").json()
            assert log["file"]["default"]["level"] == "info"
            assert log["file"]["default"]["path"] == str(path)
            assert log["console"]["enable"] is True

            assert api.post("/banned", json={"as": "clientid", "who": "log-banned"}).is_success
            refused(proc, "log-banned")
            wait_until(lambda: "refusing banned client log-banned" in path.read_text())

            # JSON lines, and warning level: the refusal (info) is no longer written
            r = api.put("/configs/log", json={"file": {"default": {
                "formatter": "json", "level": "warning"}}})
            assert r.status_code == 200, r.text
            assert r.json()["file"]["default"]["formatter"] == "json"
            size = path.stat().st_size
            refused(proc, "log-banned")
            r = api.put("/configs/log", json={"file": {"default": {"level": "info"}}})
            assert r.status_code == 200
            refused(proc, "log-banned")
            wait_until(lambda: path.stat().st_size > size)
            [line] = path.read_text()[size:].splitlines()
            entry = json.loads(line)
            assert entry["level"] == "info" and entry["logger"] == "emqpy.banned"
            assert entry["msg"].startswith("refusing banned client log-banned")

            # a file that cannot be opened is refused, and the running handlers stay
            r = api.put("/configs/log", json={"file": {"default": {
                "path": str(tmp_path / "data" / "emqpy.db" / "x.log")}}})
            assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
            assert "cannot open the log file" in r.json()["message"]
            assert api.get("/configs/log").json()["file"]["default"]["path"] == str(path)

            # turned off: nothing more is written
            assert api.put("/configs/log", json={"file": {"default": {"enable": False}}}) \
                .status_code == 200
            size = path.stat().st_size
            refused(proc, "log-banned")
            assert path.stat().st_size == size
    finally:
        proc.stop()
    # the change was saved: the next start uses it
    saved = parse_hocon_string((tmp_path / "data" / "configs" / "cluster.hocon").read_text())
    assert saved["log"]["file"]["default"]["enable"] is False
