"""A rule's metrics, as EMQX's rule_metrics (emqx_metrics_worker): counters, and the rate of
`matched` sampled every 10 seconds (current, max since the rule was (re)created, average over
the last 5 minutes), shown rounded to 2 decimals.

What counts where (emqx_rule_runtime): `matched` each time the FROM matches; then `passed` (the
SQL gave a result), `failed.no_result` (WHERE false, or FOREACH left nothing) or
`failed.exception` (the SQL raised). For each action called: `actions.total`, then
`actions.success`, or `actions.failed` with `.out_of_service` / `.unknown`, or
`actions.discarded` (the action does not exist). EMQX 5.8.1 never counts in `failed` itself;
neither does emqpy, so the numbers read the same.
"""
from __future__ import annotations

from collections import deque

COUNTERS = ("matched", "passed", "failed", "failed.exception", "failed.no_result",
            "actions.total", "actions.success", "actions.failed",
            "actions.failed.out_of_service", "actions.failed.unknown", "actions.discarded")
SAMPLING = 10.0  # seconds between rate samples
SAMPLES_5M = 30  # samples in 5 minutes


class RuleMetrics:
    __slots__ = ("c", "rate", "rate_max", "rate_5m", "_last", "_samples")

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.c = dict.fromkeys(COUNTERS, 0)
        self.rate = self.rate_max = self.rate_5m = 0.0
        self._last = 0
        self._samples: deque = deque(maxlen=SAMPLES_5M)

    def sample(self) -> None:
        """Take one rate sample (called every SAMPLING seconds)."""
        cur = self.c["matched"]
        rate = max(0, cur - self._last) / SAMPLING
        self._last = cur
        self.rate = rate
        if rate > self.rate_max:
            self.rate_max = rate
        self._samples.append(rate)
        self.rate_5m = sum(self._samples) / len(self._samples)

    def as_dict(self) -> dict:
        out = dict(self.c)
        out["matched.rate"] = round(self.rate, 2)
        out["matched.rate.max"] = round(self.rate_max, 2)
        out["matched.rate.last5m"] = round(self.rate_5m, 2)
        return out


# EMQX's Prometheus names of a rule's metrics (emqx_prometheus_data_integration), in its order
PROMETHEUS = (("emqx_rule_enable", "gauge", None), ("emqx_rule_matched", "counter", "matched"),
              ("emqx_rule_failed", "counter", "failed"),
              ("emqx_rule_passed", "counter", "passed"),
              ("emqx_rule_failed_exception", "counter", "failed.exception"),
              ("emqx_rule_failed_no_result", "counter", "failed.no_result"),
              ("emqx_rule_actions_total", "counter", "actions.total"),
              ("emqx_rule_actions_success", "counter", "actions.success"),
              ("emqx_rule_actions_failed", "counter", "actions.failed"),
              ("emqx_rule_actions_failed_out_of_service", "counter",
               "actions.failed.out_of_service"),
              ("emqx_rule_actions_failed_unknown", "counter", "actions.failed.unknown"),
              ("emqx_rule_actions_discarded", "counter", "actions.discarded"))


def prometheus_data(broker) -> dict:
    """What GET /prometheus/data_integration shows of the rules: the overview counts and, per
    rule id, its metrics under EMQX's Prometheus names."""
    from emqpy.rule_engine import engine_of

    eng = engine_of(broker)
    rules = eng.ordered() if eng is not None else []
    per_rule = {}
    for r in rules:
        c = r.metrics.c
        per_rule[r.id] = {name: (int(r.enable) if key is None else c[key])
                          for name, _t, key in PROMETHEUS}
    return {"emqx_rules_count": len(rules),
            "emqx_actions_count": sum(len(r.actions) for r in rules), "rules": per_rule}
