"""EMQX's Prometheus metrics (emqx_prometheus) for this node: the families, their EMQX names
and types, rendered as Prometheus text exposition format or as EMQX's JSON shape.

Counters EMQX exports but emqpy does not count yet (e.g. ``messages.retained``) are left out
rather than reported as a made-up zero; they appear as soon as the broker's metrics hold them.
"""
from __future__ import annotations

import gc
import logging
import math
import os

from emqpy.broker.metrics import NAMES
from emqpy.monitor import node, system

log = logging.getLogger("emqpy.prometheus")

MODES = ("node", "all_nodes_aggregated", "all_nodes_unaggregated")

# EMQX's Prometheus names are "emqx_" + the key with "." as "_", but for these.
_RENAMED = {"packets.connect.received": "emqx_packets_connect",
            "messages.dropped.await_pubrel_timeout": "emqx_messages_dropped_expired"}


def _m(*keys: str) -> list[tuple[str, str]]:
    """(Prometheus name, EMQX key) of each key."""
    return [(_RENAMED.get(k, f"emqx_{k.replace('.', '_')}"), k) for k in keys]


# Broker counters EMQX's Prometheus export leaves out.
_NOT_EXPORTED = ("messages.validation_", "messages.transformation_", "messages.persisted")
# Counters a feature adds to the broker's when it starts (exported while they exist), in EMQX's
# order. EMQX 5.8.1 reads emqx_authorization_matched_allow/deny from keys its authz never bumps
# ("authorization.matched_allow"): here they show the "authorization.matched.allow" count.
_FEATURE_COUNTERS = {"authorization.": ("authorization.superuser", "authorization.nomatch",
                                        "authorization.matched.allow",
                                        "authorization.matched.deny")}


def _group(*prefixes: str) -> list[tuple[str, str]]:
    """The broker's counters (emqpy.broker.metrics.NAMES) under `prefixes`, in its order."""
    keys = [k for k in NAMES if k.startswith(prefixes) and not k.startswith(_NOT_EXPORTED)]
    return _m(*keys, *(k for p in prefixes for k in _FEATURE_COUNTERS.get(p, ())))


# (prometheus name, EMQX key) per group; groups keep EMQX's JSON section names.
STATS = _m("connections.count", "connections.max", "live_connections.count",
           "live_connections.max", "sessions.count", "sessions.max", "channels.count",
           "channels.max", "suboptions.count", "suboptions.max", "subscribers.count",
           "subscribers.max", "subscriptions.count", "subscriptions.max",
           "durable_subscriptions.count", "durable_subscriptions.max", "delayed.count",
           "delayed.max")
# One value for the whole cluster: never labelled with a node.
STATS_CLUSTER = _m("cluster_sessions.count", "cluster_sessions.max", "topics.max",
                   "topics.count", "retained.count", "retained.max",
                   "subscriptions.shared.count", "subscriptions.shared.max")
VM = [("emqx_vm_cpu_use", "cpu_use"), ("emqx_vm_cpu_idle", "cpu_idle"),
      ("emqx_vm_run_queue", "run_queue"),
      ("emqx_vm_process_messages_in_queues", "process_total_messages"),
      ("emqx_vm_total_memory", "total_memory"), ("emqx_vm_used_memory", "used_memory")]
CLUSTER = [("emqx_cluster_nodes_running", None), ("emqx_cluster_nodes_stopped", None)]
METRIC_GROUPS = [("packets", _group("bytes.", "packets.")), ("messages", _group("messages.")),
                 ("delivery", _group("delivery.")), ("client", _group("client.")),
                 ("session", _group("session.")), ("olp", _group("overload_protection.")),
                 ("acl", _group("authorization.")), ("authn", _group("authentication."))]


class Family:
    __slots__ = ("name", "type", "help", "points")

    def __init__(self, name: str, type_: str, help_: str, points: list[tuple[dict, float]]):
        self.name, self.type, self.help, self.points = name, type_, help_, points


def _olp_enabled(broker) -> bool:
    return broker.config.overload_protection.enable


def cert_points(broker) -> list[tuple[dict, float]]:
    """Expiry (epoch seconds) of the certificate of every enabled ssl/wss listener; 0 when
    the file cannot be read, as EMQX reports."""
    try:
        listeners = broker.config.dump("listeners")
    except Exception:  # a config object without dump(): no listener certificates to report
        return []
    points = []
    for ltype in ("ssl", "wss"):
        for name, conf in (listeners.get(ltype) or {}).items():
            if not isinstance(conf, dict) or not conf.get("enable", True):
                continue
            certfile = (conf.get("ssl_options") or {}).get("certfile")
            if not certfile:
                continue
            points.append(({"listener_type": ltype, "listener_name": name},
                           _cert_expiry(str(certfile))))
    return points


def _cert_expiry(path: str) -> int:
    from cryptography import x509

    path = path.replace("${EMQX_ETC_DIR}", os.environ.get("EMQX_ETC_DIR", "etc"))
    try:
        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        return int(cert.not_valid_after_utc.timestamp())
    except (OSError, ValueError) as e:
        log.debug("cannot read certificate %s: %s", path, e)
        return 0


def collect(broker, mode: str = "node") -> list[Family]:
    """All families for this node. ``mode`` only decides the ``node`` labels, since every
    mode covers the same single node."""
    node_label = {"node": broker.node_name}
    per_node = node_label if mode == "all_nodes_unaggregated" else {}
    vm_label = {} if mode == "node" else node_label
    stats = node.node_stats(broker)
    metrics = node.node_metrics(broker)
    vm = node.vm_stats(broker)
    fams: list[Family] = []
    for name, key in STATS:
        if key in stats:
            fams.append(Family(name, "gauge", f"EMQX stat {key}", [(per_node, stats[key])]))
    for name, key in STATS_CLUSTER:
        if key in stats:
            fams.append(Family(name, "gauge", f"EMQX stat {key}", [({}, stats[key])]))
    for name, key in VM:
        fams.append(Family(name, "gauge", f"VM {key}", [(vm_label, vm[key])]))
    fams.append(Family("emqx_cluster_nodes_running", "gauge", "Running nodes of the cluster",
                       [(vm_label, 1 if broker.running else 0)]))
    fams.append(Family("emqx_cluster_nodes_stopped", "gauge", "Stopped nodes of the cluster",
                       [(vm_label, 0)]))
    for group, entries in METRIC_GROUPS:
        if group == "olp" and not _olp_enabled(broker):
            continue
        for name, key in entries:
            if key in metrics:
                fams.append(Family(name, "counter", f"EMQX metric {key}",
                                   [(per_node, metrics[key])]))
    fams.append(Family("emqx_cert_expiry_at", "gauge",
                       "Listener certificate expiry, epoch seconds", cert_points(broker)))
    return fams


def process_families(broker) -> list[Family]:
    """Runtime metrics of this (emqpy) process, switched by ``prometheus.collectors`` the way
    EMQX switches its Erlang VM collectors: vm_memory (memory), vm_statistics (CPU time,
    garbage collections), vm_system_info (descriptors, threads, start time) and mnesia (the
    SQLite store's size). vm_dist and vm_msacc have no counterpart in one Python process."""
    on = broker.config.prometheus.collectors
    fams: list[Family] = []
    if on.vm_memory == "enabled":
        fams += [
            Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                   [({}, system.rss_bytes())]),
            Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                   [({}, system.vms_bytes())])]
    if on.vm_statistics == "enabled":
        fams += [
            Family("process_cpu_seconds_total", "counter", "Total user and system CPU time "
                   "spent in seconds.", [({}, system.process_cpu_seconds())]),
            Family("python_gc_collections_total", "counter", "Garbage collections per "
                   "generation.", [({"generation": str(g)}, st["collections"])
                                   for g, st in enumerate(gc.get_stats())])]
    if on.vm_system_info == "enabled":
        fams += [
            Family("process_open_fds", "gauge", "Number of open file descriptors.",
                   [({}, system.open_fds())]),
            Family("process_max_fds", "gauge", "Maximum number of open file descriptors.",
                   [({}, system.max_fds())]),
            Family("process_threads", "gauge", "Threads of this process.",
                   [({}, system.thread_count())]),
            Family("process_start_time_seconds", "gauge", "Start time of the process since "
                   "unix epoch in seconds.", [({}, system.process_start_time())])]
    if on.mnesia == "enabled":
        fams.append(Family("emqpy_store_size_bytes", "gauge", "Size of the SQLite store "
                           "(database and write-ahead log) in bytes.",
                           [({}, _store_size(broker))]))
    return fams


def _store_size(broker) -> int:
    path = broker.store.path if broker.store is not None else None
    total = 0
    if path is not None:
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(str(path) + suffix)
            except OSError:
                pass
    return total


# -- text exposition format ----------------------------------------------------------------------

def _escape_label(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return repr(v)
    return str(v)


def render_text(families: list[Family]) -> str:
    out = []
    for fam in families:
        out.append(f"# TYPE {fam.name} {fam.type}")
        out.append(f"# HELP {fam.name} {fam.help}")
        for labels, value in fam.points:
            if labels:
                lab = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
                out.append(f"{fam.name}{{{lab}}} {_fmt_value(value)}")
            else:
                out.append(f"{fam.name} {_fmt_value(value)}")
    return "\n".join(out) + "\n"


# -- EMQX's JSON shape ----------------------------------------------------------------------------

def render_json(broker, families: list[Family], mode: str) -> dict:
    """``{"stats": {...}, "metrics": {...vm...}, "packets": {...}, ..., "certs": [...]}``:
    objects keyed by metric name; in ``all_nodes_unaggregated`` mode a list of such objects,
    one per node, each with ``node``."""
    by_name = {f.name: f for f in families}

    def section(entries) -> dict:
        obj = {}
        for name, _key in entries:
            fam = by_name.get(name)
            if fam is not None and fam.points:
                labels, value = fam.points[0]
                obj.update(labels)
                obj[name] = value
        return obj

    def shaped(obj: dict):
        return [obj] if mode == "all_nodes_unaggregated" else obj

    stats = section(STATS)
    stats.update(section(STATS_CLUSTER))
    vm = section(VM)
    out = {
        "stats": shaped(stats),
        "metrics": vm if mode == "node" else [vm],
        "cluster": shaped(section(CLUSTER)),
        "certs": [{**labels, "emqx_cert_expiry_at": v}
                  for labels, v in by_name["emqx_cert_expiry_at"].points],
    }
    for group, entries in METRIC_GROUPS:
        obj = section(entries)
        out[group] = shaped(obj) if obj else ({} if mode != "all_nodes_unaggregated" else [])
    return out
