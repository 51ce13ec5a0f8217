"""emqpy.testing as an application sees it: `pip install emqpy`, then a test that asks for the
`mqtt_broker` fixture, with nothing else set up (no conftest, no `-p` option)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

APP_TEST = textwrap.dedent('''
    import queue

    import httpx
    import paho.mqtt.client as mqtt


    def test_publish_subscribe(mqtt_broker):
        got = queue.Queue()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="app-sub")
        sub.on_message = lambda c, u, m: got.put((m.topic, m.payload))
        sub.on_subscribe = lambda c, u, mid, rcs, p: got.put("subscribed")
        sub.connect(mqtt_broker.host, mqtt_broker.port)
        sub.loop_start()
        sub.subscribe("app/#", qos=1)
        assert got.get(timeout=10) == "subscribed"
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="app-pub")
        pub.connect(mqtt_broker.host, mqtt_broker.port)
        pub.loop_start()
        pub.publish("app/hello", b"world", qos=1).wait_for_publish(10)
        assert got.get(timeout=10) == ("app/hello", b"world")
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
        r = httpx.get(mqtt_broker.api_url + "/clients", auth=("admin", "public"))
        assert r.status_code == 200
        assert mqtt_broker.ws_port and mqtt_broker.ssl_port


    def test_config_overrides(make_mqtt_broker):
        b = make_mqtt_broker({"mqtt": {"max_packet_size": "1KB"}})
        assert b.broker.config.mqtt.max_packet_size == 1024
''')


def _pure_python_copy(dest: Path) -> None:
    """The project as an sdist would have it, without build products of this checkout."""
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "emqpy", dest / "emqpy",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.html"))


@pytest.mark.emqpy_only
@pytest.mark.timeout(600)
def test_mqtt_broker_fixture_in_a_fresh_project(tmp_path):
    # A venv that sees this environment's packages (no network needed) with emqpy installed in
    # it from this checkout, so that its pytest11 entry point is the one being tested.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["EMQPY_NO_EXTENSIONS"] = "1"  # install as pure Python: quicker, same plugin
    src = tmp_path / "src"
    src.mkdir()
    _pure_python_copy(src)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", str(src)], check=True, env=env, cwd=tmp_path,
                   capture_output=True)
    project = tmp_path / "app"
    project.mkdir()
    (project / "test_app.py").write_text(APP_TEST)
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout, run.stdout
    # the plugin came from the venv's emqpy, found through its entry point
    where = subprocess.run([str(python), "-c", "import emqpy.testing as t; print(t.__file__)"],
                           cwd=project, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(venv)), where.stdout
