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

from emqpy.rates import SAMPLING, RateMeter

COUNTERS = ("matched", "passed", "failed", "failed.exception", "failed.no_result",
            "actions.total", "actions.success", "actions.failed",
            "actions.failed.out_of_service", "actions.failed.unknown", "actions.discarded")
__all__ = ["COUNTERS", "SAMPLING", "RuleMetrics"]  # (SAMPLING: the engine times samples)


class RuleMetrics:
    __slots__ = ("c", "meter")

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.c = dict.fromkeys(COUNTERS, 0)
        self.meter = RateMeter()

    def sample(self) -> None:
        """Take one rate sample (called every SAMPLING seconds)."""
        self.meter.sample(self.c["matched"])

    def as_dict(self) -> dict:
        out = dict(self.c)
        rates = self.meter.view()
        out["matched.rate"] = rates["rate"]
        out["matched.rate.max"] = rates["rate_max"]
        out["matched.rate.last5m"] = rates["rate_last5m"]
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
