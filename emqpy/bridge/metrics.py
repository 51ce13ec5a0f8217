"""Per-action counters with EMQX's names, the `matched` rate, and EMQX's metrics answer shape."""
from __future__ import annotations

from collections import deque

# EMQX's resource counters (emqx_resource_metrics), in the order its API lists them.
COUNTERS = ("matched", "success", "failed", "retried", "retried.success", "retried.failed",
            "dropped", "dropped.other", "dropped.expired", "dropped.queue_full",
            "dropped.resource_not_found", "dropped.resource_stopped", "late_reply", "received")
DROPS = ("dropped.other", "dropped.expired", "dropped.queue_full",
         "dropped.resource_not_found", "dropped.resource_stopped")
SAMPLE_SECONDS = 5.0  # how often rates are sampled, as EMQX's metrics worker does
_WINDOW = int(300 / SAMPLE_SECONDS)  # samples in the last 5 minutes


class ActionMetrics:
    """Counters of one action (or source); `queuing`/`inflight` gauges come from its worker."""

    __slots__ = ("c", "rate", "rate_max", "_samples", "_last_matched")

    def __init__(self):
        self.c: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.rate = self.rate_max = 0.0
        self._samples: deque[float] = deque(maxlen=_WINDOW)
        self._last_matched = 0

    def inc(self, name: str, n: int = 1) -> None:
        self.c[name] += n
        if name in DROPS:
            self.c["dropped"] += n

    def sample(self) -> None:
        """Called every SAMPLE_SECONDS: the `matched` rate over the last interval."""
        matched = self.c["matched"]
        self.rate = max(0, matched - self._last_matched) / SAMPLE_SECONDS
        self._last_matched = matched
        self.rate_max = max(self.rate_max, self.rate)
        self._samples.append(self.rate)

    def reset(self) -> None:
        self.__init__()

    def view(self, queuing: int = 0, inflight: int = 0) -> dict:
        """EMQX's `metrics` object (emqx_bridge's METRICS macro, plus the two retry outcomes
        EMQX counts but leaves out)."""
        c = self.c
        last5m = sum(self._samples) / len(self._samples) if self._samples else 0.0
        return {"dropped": c["dropped"], "dropped.other": c["dropped.other"],
                "dropped.expired": c["dropped.expired"],
                "dropped.queue_full": c["dropped.queue_full"],
                "dropped.resource_not_found": c["dropped.resource_not_found"],
                "dropped.resource_stopped": c["dropped.resource_stopped"],
                "matched": c["matched"], "queuing": queuing, "retried": c["retried"],
                "retried.success": c["retried.success"], "retried.failed": c["retried.failed"],
                "late_reply": c["late_reply"], "failed": c["failed"], "inflight": inflight,
                "success": c["success"], "rate": round(self.rate, 2),
                "rate_last5m": round(last5m, 2), "rate_max": round(self.rate_max, 2),
                "received": c["received"]}


def metrics_answer(node: str, metrics: dict) -> dict:
    """GET /actions/{id}/metrics: the cluster sum (one node here) and each node's."""
    return {"metrics": dict(metrics), "node_metrics": [{"node": node, "metrics": metrics}]}
