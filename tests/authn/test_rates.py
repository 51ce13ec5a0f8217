"""Per-authenticator and per-authorization-source rates in their status answers (EMQX's
metrics worker: the rate of `total` over the last 10 s sample, its max, its 5-minute mean)."""
BUILTIN = "password_based:built_in_database"


def test_authenticator_rates(make_broker):
    node = make_broker()
    node.ok("POST", "/authentication", json={"mechanism": "password_based",
                                             "backend": "built_in_database"})
    node.ok("POST", f"/authentication/{BUILTIN}/users",
            json={"user_id": "u", "password": "p"}, status=201)
    for i in range(30):
        assert node.connack(f"rate-{i}", username="u", password="p" if i % 3 else "bad") in \
            (0, 0x86)
    svc = node.broker.authn
    node.call(svc._sample)  # the 10 s sample, taken now
    st = node.get(f"/authentication/{BUILTIN}/status")
    m = st["metrics"]
    assert (m["total"], m["success"], m["failed"]) == (30, 20, 10)
    assert (m["rate"], m["rate_max"], m["rate_last5m"]) == (3.0, 3.0, 3.0)
    assert st["node_metrics"][0]["metrics"]["rate"] == 3.0
    assert st["resource_metrics"]["rate"] == 3.0
    node.call(svc._sample)  # a quiet 10 s
    m = node.get(f"/authentication/{BUILTIN}/status")["metrics"]
    assert (m["rate"], m["rate_max"], m["rate_last5m"]) == (0.0, 3.0, 1.5)
    # The sampler runs by itself: its timer is set in the broker's loop.
    assert svc._sampler is not None and not svc._sampler.cancelled()


def test_authorization_source_rates(make_broker):
    node = make_broker({"authorization": {"sources": [
        {"type": "file", "enable": True, "rules": '{allow, all, subscribe, ["t/#"]}.\n'
                                                  '{deny, all}.\n'}]}})
    c = node.mqtt()
    for i in range(20):
        c.subscribe(f"t/{i}" if i % 2 else f"x/{i}", 0)
    svc = node.broker.authz
    node.call(svc._sample)
    m = node.get("/authorization/sources/file/status")["metrics"]
    assert m["total"] == 20 and m["rate"] == 2.0 and m["rate_max"] == 2.0
