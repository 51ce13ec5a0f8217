"""GET /prometheus/auth (EMQX's emqx_prometheus_auth): per authenticator and authorization
source their enable flag, status and counters, the built-in databases' sizes, and the ban
count; as Prometheus families and as EMQX's JSON form. The data comes from the authn, authz and
banned features' own functions."""
from __future__ import annotations

from emqpy.prometheus.collector import Family

AUTHN = (("emqx_authn_enable", "gauge", "enable"), ("emqx_authn_status", "gauge", "status"),
         ("emqx_authn_nomatch", "counter", "nomatch"), ("emqx_authn_total", "counter", "total"),
         ("emqx_authn_success", "counter", "success"), ("emqx_authn_failed", "counter", "failed"))
AUTHZ = (("emqx_authz_enable", "gauge", "enable"), ("emqx_authz_status", "gauge", "status"),
         ("emqx_authz_nomatch", "counter", "nomatch"), ("emqx_authz_total", "counter", "total"),
         ("emqx_authz_allow", "counter", "allow"), ("emqx_authz_deny", "counter", "deny"))


def _number(key: str, value) -> int:
    if key == "status":  # EMQX's status_to_number: only connected counts
        return 1 if value == "connected" else 0
    return int(value)


async def _stats(broker) -> tuple[list[dict], list[dict], int]:
    from emqpy.authn import authenticator_stats
    from emqpy.authz import source_stats
    from emqpy.banned import banned_count
    return (await authenticator_stats(broker), await source_stats(broker),
            banned_count(broker))


def _families(entries: list[dict], metrics, label: str, node: dict) -> list[Family]:
    return [Family(name, type_, "", [({label: e[label], **node}, _number(key, e[key]))
                                     for e in entries]) for name, type_, key in metrics]


async def collect(broker, mode: str = "node") -> tuple[list[Family], dict]:
    """The families and the JSON answer; ``all_nodes_unaggregated`` adds the node label to
    the per-node series, as EMQX does."""
    authns, authzs, banned = await _stats(broker)
    node = {"node": broker.node_name} if mode == "all_nodes_unaggregated" else {}
    fams = _families(authns, AUTHN, "id", node)
    fams.append(Family("emqx_authn_users_count", "gauge", "", [
        ({"id": a["id"]}, a["users_count"]) for a in authns if "users_count" in a]))
    fams += _families(authzs, AUTHZ, "type", node)
    fams.append(Family("emqx_authz_rules_count", "gauge", "", [
        ({"type": s["type"]}, s["rules_count"]) for s in authzs if "rules_count" in s]))
    fams.append(Family("emqx_banned_count", "gauge", "", [({}, banned)]))

    def rows(entries, metrics, label, extra):
        out = []
        for e in entries:
            row = {label: e[label], **node}
            row.update({name: _number(key, e[key]) for name, _t, key in metrics})
            if extra in e:
                row[f"emqx_{'authn' if label == 'id' else 'authz'}_{extra}"] = e[extra]
            out.append(row)
        return out

    as_json = {"emqx_authn": rows(authns, AUTHN, "id", "users_count"),
               "emqx_authz": rows(authzs, AUTHZ, "type", "rules_count"),
               "emqx_banned": {"emqx_banned_count": banned}}
    return fams, as_json
