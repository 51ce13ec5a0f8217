"""Imports only point down: codec <- config <- broker core <- platform <- features <- API app
<- composition root <- entry points. A module may import its own layer and the ones below it;
an upward import fails here with the importing line."""
from __future__ import annotations

import grimp

# Module prefix -> layer (higher imports lower); the longest matching prefix decides.
LAYERS: dict[str, int] = {
    # the sans-I/O MQTT codec
    "emqpy.mqtt": 0,
    # what everything reads: config models and loading, time formatting, background tasks,
    # EMQX's ${...} templates, EMQX's rates of counters
    "emqpy.config": 1, "emqpy.timefmt": 1, "emqpy.background": 1, "emqpy.templates": 1,
    "emqpy.rates": 1, "emqpy.secretfile": 1,
    # the message core: router, sessions, channel, hook points, extension slots
    "emqpy.broker": 2,
    # the platform features are written against: the feature manifest and list, the store,
    # the HTTP API's building blocks (errors, pagination, auth), dashboard users and API keys
    "emqpy.feature": 3, "emqpy.features": 3, "emqpy.store": 3, "emqpy.api": 3,
    "emqpy.dashboard.admin": 3,
    # features (peers may call each other's functions)
    "emqpy.listeners": 4, "emqpy.retainer": 4, "emqpy.banned": 4, "emqpy.alarm": 4,
    "emqpy.authn": 4, "emqpy.authz": 4, "emqpy.flapping": 4, "emqpy.mgmt": 4,
    "emqpy.monitor": 4, "emqpy.prometheus": 4, "emqpy.trace": 4, "emqpy.connectors": 4,
    "emqpy.dashboard": 4, "emqpy.bridge": 4, "emqpy.cluster": 4,
    "emqpy.rule_engine": 4,
    "emqpy.backup": 4, "emqpy.telemetry": 4, "emqpy.opentelemetry": 4, "emqpy.durable": 4,
    "emqpy.delayed": 4, "emqpy.rewrite": 4, "emqpy.auto_subscribe": 4,
    "emqpy.topic_metrics": 4, "emqpy.slow_subs": 4,
    # the API app that mounts every feature's router, and its HTTP server
    "emqpy.api.app": 5, "emqpy.api.server": 5,
    # the composition root
    "emqpy.node": 6,
    # entry points and tools
    "emqpy.cli": 7, "emqpy.__main__": 7, "emqpy.ctl": 7, "emqpy.testing": 7, "emqpy.bench": 7,
}
# The package itself only holds the version constants (imported from every layer) and lazily
# offers emqpy.Node: it is the public face, not a layer.
FACADE = "emqpy"


def layer_of(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        layer = LAYERS.get(".".join(parts[:n]))
        if layer is not None:
            return layer
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def test_every_import_points_down():
    graph = grimp.build_graph("emqpy")
    upward = []
    for module in sorted(graph.modules):
        if module == FACADE:
            continue
        mine = layer_of(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == FACADE:
                continue
            if layer_of(imported) > mine:
                for d in graph.get_import_details(importer=module, imported=imported):
                    upward.append(f"{module}:{d['line_number']} {d['line_contents']}")
    assert not upward, "imports pointing up a layer:\n" + "\n".join(upward)


def test_the_layer_table_names_real_packages():
    graph = grimp.build_graph("emqpy")
    for prefix in LAYERS:
        assert prefix in graph.modules, f"LAYERS names {prefix}, which does not exist"
