"""`built_in_database` authorization source: rules per client id, per username, and for all."""
from __future__ import annotations

import json
import time

from emqpy.authz.match import Rule, TopicSpec, first_match
from emqpy.store import register_migrations

COMPONENT = "authz"
register_migrations(COMPONENT, [
    "CREATE TABLE authz_rules (kind TEXT NOT NULL, who TEXT NOT NULL, rules TEXT NOT NULL, "
    "created_at REAL, PRIMARY KEY (kind, who))",
])
ALL = "all"


class RuleError(ValueError):
    pass


def normalise_rule(r) -> dict:
    """Validate one API rule item; returns it with EMQX's defaults filled in."""
    if not isinstance(r, dict):
        raise RuleError("a rule must be an object")
    topic, perm, action = r.get("topic"), r.get("permission"), r.get("action")
    if not isinstance(topic, str) or not topic:
        raise RuleError("rule.topic: a non-empty string is required")
    if perm not in ("allow", "deny"):
        raise RuleError("rule.permission: must be allow or deny")
    if action not in ("publish", "subscribe", "all"):
        raise RuleError("rule.action: must be publish, subscribe or all")
    qos = r.get("qos", [0, 1, 2])
    if isinstance(qos, int) and not isinstance(qos, bool):
        qos = [qos]
    try:
        qos = sorted({int(q) for q in qos})
    except (TypeError, ValueError):
        raise RuleError("rule.qos: a list of 0, 1, 2 is expected") from None
    if any(q not in (0, 1, 2) for q in qos):
        raise RuleError("rule.qos: a list of 0, 1, 2 is expected")
    retain = r.get("retain", "all")
    if retain in ("true", "false"):
        retain = retain == "true"
    if retain not in (True, False, "all"):
        raise RuleError("rule.retain: true, false or all")
    extra = set(r) - {"topic", "permission", "action", "qos", "retain"}
    if extra:
        raise RuleError(f"rule: unknown fields {sorted(extra)}")
    out = {"topic": topic, "permission": perm, "action": action, "qos": qos, "retain": retain}
    return out


def compile_rule(r: dict) -> Rule:
    t = r["topic"]
    spec = TopicSpec(t[3:], eq=True) if t.startswith("eq ") else TopicSpec(t)
    return Rule(r["permission"], lambda ch: True, r["action"], set(r["qos"]), r["retain"], [spec])


class BuiltinSource:
    type = "built_in_database"

    def __init__(self, broker, cfg: dict):
        self.broker = broker
        self.cfg = cfg
        self.max_rules = cfg.get("max_rules", 100)
        self._compiled: dict[tuple[str, str], list[Rule]] = {}
        self.load()

    @property
    def store(self):
        return self.broker.store

    def load(self) -> None:
        self._compiled = {(row["kind"], row["who"]): [compile_rule(r) for r in
                                                       json.loads(row["rules"])]
                          for row in self.store.query("SELECT kind, who, rules FROM authz_rules")}

    def authorize(self, ch, action, topic, qos, retain):
        c = self._compiled
        rules = c.get(("clientid", ch.clientid), []) + c.get(("username", ch.username), []) + \
            c.get((ALL, ""), [])
        return first_match(rules, ch, action, topic, qos, retain) if rules else None

    # -- management -----------------------------------------------------------------------

    def _check(self, rules) -> list[dict]:
        if not isinstance(rules, list):
            raise RuleError("rules: a list is expected")
        if len(rules) > self.max_rules:
            raise RuleError(f"rules: at most max_rules={self.max_rules} rules are allowed")
        return [normalise_rule(r) for r in rules]

    def get(self, kind: str, who: str) -> list[dict] | None:
        row = self.store.query_one("SELECT rules FROM authz_rules WHERE kind=? AND who=?",
                                   (kind, who))
        return json.loads(row["rules"]) if row else None

    def set(self, kind: str, who: str, rules, create_only: bool = False) -> None:
        rules = self._check(rules)
        sql = ("INSERT INTO authz_rules (kind, who, rules, created_at) VALUES (?,?,?,?) ON "
               "CONFLICT(kind, who) DO " + ("NOTHING" if create_only else
                                            "UPDATE SET rules=excluded.rules"))
        n = self.store.execute(sql, (kind, who, json.dumps(rules), time.time()))
        if create_only and not n:
            raise FileExistsError(who)
        self._compiled[(kind, who)] = [compile_rule(r) for r in rules]

    def delete(self, kind: str, who: str | None = None) -> bool:
        if who is None:
            n = self.store.execute("DELETE FROM authz_rules WHERE kind=?", (kind,))
            self._compiled = {k: v for k, v in self._compiled.items() if k[0] != kind}
        else:
            n = self.store.execute("DELETE FROM authz_rules WHERE kind=? AND who=?", (kind, who))
            self._compiled.pop((kind, who), None)
        return bool(n)

    def delete_everything(self) -> None:
        self.store.execute("DELETE FROM authz_rules")
        self._compiled = {}

    def list(self, kind: str, offset: int, limit: int, like: str | None):
        where, params = "kind=?", [kind]
        if like:
            where += " AND instr(who, ?) > 0"
            params.append(like)
        total = self.store.query_one(f"SELECT count(*) AS n FROM authz_rules WHERE {where}",
                                     params)["n"]
        if offset >= total:  # past the end (an offset SQLite's 64 bits may not even hold)
            return [], total
        rows = self.store.query(f"SELECT who, rules FROM authz_rules WHERE {where} "
                                "ORDER BY created_at, who LIMIT ? OFFSET ?",
                                [*params, limit, offset])
        return [(r["who"], json.loads(r["rules"])) for r in rows], total

    async def status(self) -> str:
        return "connected"

    async def close(self) -> None:
        pass

    async def destroy(self) -> None:
        self.delete_everything()
