"""A read-only snapshot of the running connectors and actions, for other features'
observability (/prometheus/data_integration): nothing here changes the bridges."""
from __future__ import annotations


def snapshot(broker) -> dict:
    """``{"connectors": [{id, enable, status}], "actions": [{id, enable, status, counters,
    queuing, inflight}]}``, in creation order; empty lists while the feature is not running.
    ``counters`` are EMQX's resource counters (emqpy.bridge.metrics.COUNTERS)."""
    svc = broker.bridges
    if svc is None:
        return {"connectors": [], "actions": []}
    connectors = [{"id": c.id, "enable": bool(c.cfg.enable), "status": c.status}
                  for c in list(svc.connectors.values())]
    actions = []
    kind = svc.kinds["actions"]
    for a in list(svc.actions.values()):
        w = a.worker
        actions.append({"id": a.id, "enable": bool(a.cfg.enable),
                        "status": kind.status(a, kind.running(a))[0], "counters": dict(a.metrics.c),
                        "queuing": w.queuing if w else 0, "inflight": w.inflight if w else 0})
    return {"connectors": connectors, "actions": actions}
