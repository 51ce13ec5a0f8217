"""The one list of feature packages: each exposes ``FEATURE`` (``emqpy.feature.Feature``).

Order matters: features are set up in this order and torn down in reverse (banned before
flapping, which bans through it; the store-backed ones before mgmt, monitor and prometheus,
which read them), and their routers are mounted in this order. ``api`` and ``dashboard`` are
the API platform itself (status, error codes, login, users, API keys): routers only.
To add a feature: write ``emqpy/<name>/__init__.py`` with ``FEATURE = Feature(...)`` and append
``"emqpy.<name>"`` here.
"""
from __future__ import annotations

import importlib
import importlib.util

from emqpy.feature import Feature

FEATURES: tuple[str, ...] = (
    "emqpy.api",
    "emqpy.dashboard",
    "emqpy.retainer",
    "emqpy.banned",
    "emqpy.alarm",
    "emqpy.authn",
    "emqpy.authz",
    "emqpy.flapping",
    "emqpy.cluster",
    "emqpy.bridge",
    "emqpy.rule_engine",
    "emqpy.mgmt",
    "emqpy.monitor",
    "emqpy.prometheus",
    "emqpy.trace",
    "emqpy.backup",
    "emqpy.telemetry",
    "emqpy.opentelemetry",
    "emqpy.delayed",
    "emqpy.rewrite",
    "emqpy.auto_subscribe",
    "emqpy.topic_metrics",
    "emqpy.slow_subs",
    "emqpy.durable",  # last: sessions come back once every feature (rules, retainer) is up
)


def manifests(names: tuple[str, ...] | None = None) -> list[Feature]:
    """The manifests of the packages in ``names`` (default FEATURES) that are installed, in
    order; a package missing from a trimmed install is skipped."""
    out = []
    for name in FEATURES if names is None else names:
        if importlib.util.find_spec(name) is not None:
            out.append(importlib.import_module(name).FEATURE)
    return out
