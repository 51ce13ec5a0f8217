"""The one feature list (emqpy.features) drives both the broker's feature start/stop and the API
app's routers; the Broker declares every extension point a feature fills."""
from __future__ import annotations

import dataclasses
import importlib
import re

import httpx
from fastapi import FastAPI

from emqpy import features
from emqpy.api.app import API_PREFIX
from emqpy.broker.broker import Broker
from support.node import ADMIN

# EMQX's MQTT extensions, set up after the others in this order
MQTT_EXTENSIONS = ["delayed", "rewrite", "auto_subscribe", "topic_metrics", "slow_subs"]
# The broker's extension points and the feature that fills each.
EXTENSION_POINTS = {"retainer": "retainer", "banned": "banned", "alarms": "alarm", "authn": "authn",
                    "enhanced_auth": "authn", "authz": "authz", "authorize_prefetch": "authz",
                    "flapping": "flapping", "rule_engine": "rule_engine", "monitor": "monitor",
                    "prometheus_pusher": "prometheus", "bridges": "bridge",
                    "cluster": "cluster", "traces": "trace", "tracer": "trace",
                    "durable": "durable", "delayed": "delayed", "delay_publish": "delayed",
                    "rewrite": "rewrite",
                    "auto_subscribe": "auto_subscribe", "topic_metrics": "topic_metrics",
                    "slow_subs": "slow_subs"}


def test_feature_packages_are_listed_once_with_their_manifest():
    own = tuple(n for n in features.FEATURES if n.startswith("emqpy."))  # not conftest's probe
    found = features.manifests(own)
    names = [f.name for f in found]
    assert names == [n.rsplit(".", 1)[1] for n in own]
    assert len(set(names)) == len(names)
    # the start order the broker has always had (stopped in reverse)
    assert [f.name for f in found if f.setup is not None] == [
        "retainer", "banned", "alarm", "authn", "authz", "flapping", "cluster", "bridge",
        "rule_engine", "mgmt",
        "monitor", "prometheus", "trace",
        "opentelemetry", *MQTT_EXTENSIONS, "durable"]


def test_the_broker_declares_its_extension_points():
    b = Broker()
    for attr in EXTENSION_POINTS:
        assert attr in vars(b), f"Broker.__init__ does not declare {attr}"
        assert getattr(b, attr) is None


def _paths(router, prefix: str) -> list[str]:
    """The documented paths of `router` mounted under `prefix`."""
    if router is None:
        return []
    app = FastAPI()
    app.include_router(router, prefix=prefix)
    return list(app.openapi()["paths"])


def test_every_manifest_router_is_served_by_the_running_api(make_broker):
    node = make_broker()
    served = httpx.get(node.base + "/api-docs/swagger.json", auth=ADMIN)
    assert served.status_code == 200
    documented = set(served.json()["paths"])
    for feature in features.manifests():
        for name in feature.routers:
            mod = importlib.import_module(name)
            for attr, prefix in (("router", API_PREFIX), ("root_router", "")):
                for path in _paths(getattr(mod, attr, None), prefix):
                    if prefix:
                        assert path[len(prefix):] in documented, (feature.name, path)
                    # a method no route has: 405 where a route matches the path, 404 elsewhere
                    got = httpx.request("TRACE", node.base + re.sub(r"{[^}]+}", "x", path),
                                        auth=ADMIN)
                    assert got.status_code == 405, (feature.name, path, got.status_code)
    # the test-only feature conftest appends to the list answers over HTTP too
    assert node.api.get("/probe/whoami").json()["kind"] == "user"


def test_features_set_up_in_list_order_and_torn_down_in_reverse(make_broker, monkeypatch):
    calls: list[tuple[str, str]] = []
    real = features.manifests

    def recording(feature):
        def setup(broker):
            calls.append(("setup", feature.name))
            return feature.setup(broker)

        async def teardown(broker):
            calls.append(("teardown", feature.name))
            await feature.teardown(broker)

        return dataclasses.replace(
            feature, setup=setup if feature.setup else None,
            teardown=teardown if feature.teardown else None)

    monkeypatch.setattr(features, "manifests", lambda: [recording(f) for f in real()])
    node = make_broker()
    broker = node.broker
    assert broker.authn is not None and broker.enhanced_auth is not None
    assert broker.authz is not None and broker.flapping is not None
    assert broker.monitor is not None and broker.banned is not None
    started = [n for step, n in calls if step == "setup"]
    assert started == ["retainer", "banned", "alarm", "authn", "authz", "flapping", "cluster",
                       "bridge", "rule_engine", "mgmt", "monitor", "prometheus", "trace",
                       "opentelemetry", *MQTT_EXTENSIONS, "durable"]
    node.stop()
    stopped = [n for step, n in calls if step == "teardown"]
    with_teardown = [f.name for f in real() if f.setup and f.teardown]
    assert stopped == list(reversed(with_teardown))
    # the teardowns really ran: the points they own are empty again
    assert broker.authn is None and broker.enhanced_auth is None
    assert broker.authz is None and broker.authorize_prefetch is None
    assert broker.flapping is None and broker.retainer is None
