"""This node's facts in EMQX's shapes: node info (GET /nodes), stats, metrics and VM figures.

Every figure is read from the running broker (or the host/process via emqpy.monitor.system)
at call time.
"""
from __future__ import annotations

import asyncio
import os
import platform
import time

import emqpy
from emqpy.monitor import system

# Stats EMQX keeps cluster-wide (one value for the whole cluster, not summed per node).
GLOBAL_STATS = ("retained.count", "retained.max", "topics.count", "topics.max",
                "subscriptions.shared.count", "subscriptions.shared.max")
# Stats EMQX leaves out of per-node answers (/stats, /nodes/{node}/stats).
AGGREGATED_ONLY = ("durable_subscriptions.count", "durable_subscriptions.max")


def uptime_ms(broker) -> int:
    started = broker.started_at or time.time()
    return max(0, int((time.time() - started) * 1000))


def node_stats(broker) -> dict[str, int]:
    """EMQX's emqx_stats:getstats() for this node.

    EMQX counts every channel, connected or not (a disconnected client with a persistent
    session keeps its channel), in channels/sessions/connections/cluster_sessions, and only
    connected ones in live_connections.
    """
    base = dict(broker.stats())
    live = len(broker.channels)
    live_max = max(live, base.get("live_connections.max", 0), base.get("connections.max", 0))
    sessions = base.get("sessions.count", len(broker.sessions))
    sessions_max = max(sessions, base.get("sessions.max", 0))
    out = dict(base)
    out["live_connections.count"], out["live_connections.max"] = live, live_max
    for key in ("connections", "channels", "cluster_sessions"):
        out[key + ".count"], out[key + ".max"] = sessions, sessions_max
    out.setdefault("durable_subscriptions.max", out.get("durable_subscriptions.count", 0))
    return out


def per_node_stats(broker) -> dict[str, int]:
    stats = node_stats(broker)
    for key in AGGREGATED_ONLY:
        stats.pop(key, None)
    return stats


def node_metrics(broker) -> dict[str, int]:
    return dict(broker.metrics.snapshot())


def process_used(broker) -> int:
    """Analogue of the count of Erlang processes: the broker loop's asyncio tasks plus one per
    open MQTT connection (in EMQX each connection is a process)."""
    loop = broker.loop
    tasks = 0
    if loop is not None:
        try:
            tasks = len(asyncio.all_tasks(loop))
        except RuntimeError:  # the set changed size while another thread iterated it
            tasks = 0
    conns = sum(getattr(lst, "current_connections", 0) or 0
                for lst in broker.listeners.values())
    return tasks + conns


def queued_messages(broker) -> int:
    """Analogue of messages waiting in process mailboxes: messages queued in sessions."""
    return sum(len(s.mqueue) for s in list(broker.sessions.values()))


def _log_path(broker) -> str:
    from emqpy.config.loghandlers import file_path
    for h in broker.config.log.file.values():
        if h.enable:
            return str(file_path(h).parent)
    return "log.file.enable is false, not logging to file."


def kmg(n: int) -> str:
    """EMQX's byte formatting: 512.00M, 1.50G, 12.00K, or the plain number below 1K."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n > size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def node_info(broker) -> dict:
    """GET /nodes/{node}: the fields of EMQX's emqx_mgmt:node_info()."""
    total, used = system.sys_memory()
    info = dict(system.loads())
    info.update({
        "node": broker.node_name,
        "otp_release": f"{platform.python_version()}/{platform.python_implementation()}",
        "memory_total": kmg(total),
        "memory_used": kmg(used),
        "process_available": system.max_fds(),
        "process_used": process_used(broker),
        "max_fds": system.max_fds(),
        "connections": len(broker.sessions),
        "live_connections": len(broker.channels),
        "cluster_sessions": len(broker.sessions),
        "node_status": "running" if broker.running else "stopped",
        "uptime": uptime_ms(broker),
        "version": broker.emqx_version,
        "edition": "Opensource",
        "role": "core",
        "log_path": _log_path(broker),
        "sys_path": os.path.dirname(os.path.abspath(emqpy.__file__)),
    })
    return info


def vm_stats(broker) -> dict[str, float]:
    """EMQX's emqx_mgmt:vm_stats() plus the queued message total (Prometheus emqx_vm_*)."""
    use, idle = system.cpu.util()
    total, used = system.sys_memory()
    return {"cpu_use": use, "cpu_idle": idle, "run_queue": system.runnable_threads(),
            "process_total_messages": queued_messages(broker),
            "total_memory": total, "used_memory": used}
