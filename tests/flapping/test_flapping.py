"""flapping_detect: a client that reconnects too often is banned, visibly in /banned."""


def cycle(n, clientid, times, version=5):
    for _ in range(times):
        c, code = n.connect(clientid, version=version)
        assert code == 0
        c.send(bytes([0xE0, 0x00]) if version != 5 else bytes([0xE0, 0x01, 0x00]))
        c.expect_close()


def test_flapping_client_is_banned(make_broker):
    n = make_broker({"flapping_detect": {"enable": True, "max_count": 3, "window_time": "1m",
                                  "ban_time": "5m"}})
    cycle(n, "flappy", 4)  # connecting again after three disconnects still works
    # the fourth disconnect within the window bans the client id
    assert n.connack("flappy") == 0x8A
    assert n.connack("flappy", username="u", password="p", version=4) == 5
    assert n.connack("steady") == 0  # others are not affected
    if getattr(n.broker, "banned", None) is not None:
        r = n.api.get("/banned")
        assert r.status_code == 200, r.text
        bans = [b for b in r.json()["data"] if b["who"] == "flappy"]
        assert bans and bans[0]["as"] == "clientid" and bans[0]["by"] == "flapping detector"
        # an operator lifts the ban
        assert n.api.delete("/banned/clientid/flappy").status_code == 204
        assert n.connack("flappy") == 0


def test_disabled_by_default(make_broker):
    n = make_broker()
    cycle(n, "busy", 20)
    assert n.connack("busy") == 0


def test_window_resets(make_broker):
    # window_time 0s: every disconnect starts a new window, so nobody is ever banned
    n = make_broker({"flapping_detect": {"enable": True, "max_count": 1, "window_time": "0s",
                                  "ban_time": "5m"}})
    cycle(n, "slow", 4)
    assert n.connack("slow") == 0
