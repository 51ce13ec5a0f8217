"""State survives restarts and kill -9; default user on first start only; the API key bootstrap
file; `emqpy ctl admins` on the same database."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from emqpy.dashboard.cli import admins_main

from support.node import assert_error

ROOT = Path(__file__).resolve().parents[2]


def test_users_keys_and_tokens_survive_restart(make_broker, tmp_path):
    h = make_broker(data_dir=tmp_path)
    k = h.new_key("persist-key", desc="kept")
    with h.client(auth=("admin", "public")) as c:
        c.post("/api/v5/users", json={"username": "keeper", "password": "keeper-pw1"})
    token = h.token("keeper", "keeper-pw1")
    h.restart()
    with h.client(auth=(k["api_key"], k["api_secret"])) as c:
        assert c.get("/api/v5/probe/whoami").json()["kind"] == "api_key"
    with h.client(headers={"Authorization": "Bearer " + token}) as c:
        assert c.get("/api/v5/probe/whoami").json() == {"kind": "user", "name": "keeper"}
    with h.client(auth=("admin", "public")) as c:
        assert c.get("/api/v5/api_key/persist-key").json()["desc"] == "kept"


def test_default_user_is_created_on_first_start_only(make_broker, tmp_path):
    h = make_broker({"dashboard": {"default_username": "boss", "default_password": "first-pw1"}},
                 data_dir=tmp_path)
    with h.client(auth=("boss", "first-pw1")) as c:
        assert [u["username"] for u in c.get("/api/v5/users").json()] == ["boss"]
        c.post("/api/v5/users", json={"username": "second", "password": "second-pw1"})
    with h.client(auth=("second", "second-pw1")) as c:
        assert c.delete("/api/v5/users/boss").status_code == 204
    h.restart()  # not re-created: a deleted default user stays deleted
    with h.client(auth=("second", "second-pw1")) as c:
        assert [u["username"] for u in c.get("/api/v5/users").json()] == ["second"]


def test_api_key_bootstrap_file(make_broker, tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# automation keys\nci-key:ci-secret-123\n\nbroken line\nops:ops-secret-456:admin\n")
    h = make_broker({"api_key": {"bootstrap_file": str(f)}})
    for key, secret in (("ci-key", "ci-secret-123"), ("ops", "ops-secret-456")):
        with h.client(auth=(key, secret)) as c:
            assert c.get("/api/v5/probe/whoami").json() == {"kind": "api_key", "name": key}
    with h.client(auth=("ci-key", "wrong")) as c:
        assert c.get("/api/v5/probe/whoami").status_code == 401
    with h.client(auth=("admin", "public")) as c:
        names = {k["name"]: k for k in c.get("/api/v5/api_key").json()}
        assert names["from_bootstrap_file_ci-key"]["api_key"] == "ci-key"
    # a changed secret in the file replaces the stored one at the next start
    f.write_text("ci-key:rotated-secret-789\n")
    h.restart()
    with h.client(auth=("ci-key", "rotated-secret-789")) as c:
        assert c.get("/api/v5/probe/whoami").status_code == 200
    with h.client(auth=("ci-key", "ci-secret-123")) as c:
        assert c.get("/api/v5/probe/whoami").status_code == 401


def test_ctl_admins(make_broker, tmp_path, capsys):
    h = make_broker(data_dir=tmp_path)
    assert admins_main(["add", "ctl_user", "ctl-pass-1", "added by ctl"], tmp_path) == 0
    with h.client(auth=("ctl_user", "ctl-pass-1")) as c:
        users = {u["username"]: u for u in c.get("/api/v5/users").json()}
        assert users["ctl_user"]["description"] == "added by ctl"
    token = h.token("admin", "public")
    # lost password: reset it from the command line while the broker runs
    assert admins_main(["passwd", "admin", "new-admin-pw1"], tmp_path) == 0
    with h.client(auth=("admin", "public")) as c:
        assert c.get("/api/v5/users").status_code == 401
    with h.client(headers={"Authorization": "Bearer " + token}) as c:
        assert_error(c.get("/api/v5/users"), 401, "BAD_TOKEN")  # sessions ended
    with h.client(auth=("admin", "new-admin-pw1")) as c:
        assert c.get("/api/v5/users").status_code == 200
    assert admins_main(["del", "ctl_user"], tmp_path) == 0
    with h.client(auth=("ctl_user", "ctl-pass-1")) as c:
        assert c.get("/api/v5/users").status_code == 401
    capsys.readouterr()
    assert admins_main(["del", "ctl_user"], tmp_path) == 1
    assert "User not found" in capsys.readouterr().err
    assert admins_main(["passwd", "admin", "weak"], tmp_path) == 1
    assert admins_main(["add", "x"], tmp_path) == 2
    assert admins_main([], tmp_path) == 2


def test_kill_9_loses_nothing_acknowledged(tmp_path):
    code = textwrap.dedent(f"""
        import asyncio, emqpy
        async def main():
            b = emqpy.Node({{"listeners": {{"tcp": {{"default": {{"bind": "127.0.0.1:0"}}}}}},
                              "dashboard": {{"listeners": {{"http": {{"bind": "127.0.0.1:0"}}}}}}}},
                             data_dir={str(tmp_path)!r})
            await b.start()
            print(b.api.port, flush=True)
            await asyncio.Event().wait()
        asyncio.run(main())
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(p.stdout.readline())
        base = f"http://127.0.0.1:{port}/api/v5"
        made = []
        with httpx.Client(auth=("admin", "public"), timeout=30) as c:
            for i in range(5):
                r = c.post(base + "/api_key", json={"name": f"k9-{i}"})
                assert r.status_code == 200
                made.append(r.json())
            assert c.post(base + "/users", json={"username": "k9user", "password": "k9-pass-1"}
                          ).status_code == 200
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait(10)
        p.stdout.close()
    from emqpy.store import Store
    from emqpy.dashboard import admin
    s = Store.open(tmp_path)
    try:
        for k in made:
            assert admin.check_api_key(s, k["api_key"], k["api_secret"])
        assert admin.check_user_password(s, "k9user", "k9-pass-1")
    finally:
        s.close()
