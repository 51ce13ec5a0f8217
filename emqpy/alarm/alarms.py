"""Alarms (EMQX's emqx_alarm) and the monitors that raise them.

An alarm is activated once under its name and stays active until deactivated; deactivation
moves it to the history, which keeps `alarm.size_limit` entries for `alarm.validity_period`
(counted from activation, as EMQX). Alarms are kept in the SQLite store too: the history
survives a restart, and alarms still active when the node went down are moved to it at start
(EMQX deactivates its ephemeral alarms the same way). Each change is logged and/or published on
`$SYS/brokers/<node>/alarms/activate|deactivate`, per `alarm.actions`.

Monitors, run from event-loop timers (Linux /proc; skipped where it is missing, as EMQX skips
its OS checks off Linux):
- high_system_memory_usage: used system memory vs `sysmon.os.sysmem_high_watermark`, every
  `sysmon.os.mem_check_interval`;
- high_process_memory_usage: this process' resident memory as a share of system memory vs
  `sysmon.os.procmem_high_watermark`, same interval;
- high_cpu_usage: system CPU use above `sysmon.os.cpu_high_watermark`, cleared below
  `cpu_low_watermark`, every `cpu_check_interval`;
- too_many_connections/<listener id>: a listener holds `max_connections` connections (new
  ones are refused), cleared when it is below; every `sysmon.vm.process_check_interval` (in
  EMQX each connection is a process, so this is the process-count check's counterpart).
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import OrderedDict

from emqpy.store import register_migrations
from emqpy.timefmt import rfc3339

log = logging.getLogger("emqpy.alarm")

register_migrations("alarm", [[
    # Times in microseconds since the epoch, as EMQX keeps them; deactivate_at NULL = active.
    "CREATE TABLE alarms (activate_at INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " details TEXT NOT NULL, message TEXT NOT NULL, deactivate_at INTEGER)",
    "CREATE INDEX alarms_active ON alarms (name) WHERE deactivate_at IS NULL",
]])


class Alarm:
    __slots__ = ("name", "details", "message", "activate_at", "deactivate_at")

    def __init__(self, name: str, details: dict, message: str, activate_at: int,
                 deactivate_at: int | None = None):
        self.name = name
        self.details = details
        self.message = message
        self.activate_at = activate_at  # microseconds since the epoch, as EMQX stores it
        self.deactivate_at = deactivate_at

    def format(self, node: str) -> dict:
        """The API shape (GET /alarms)."""
        out = {"node": node, "name": self.name, "message": self.message,
               "details": self.details, "activate_at": rfc3339(self.activate_at / 1e6, ms=True)}
        if self.deactivate_at is None:
            out["duration"] = (_now_us() - self.activate_at) // 1000
        else:
            out["duration"] = (self.deactivate_at - self.activate_at) // 1000
            out["deactivate_at"] = rfc3339(self.deactivate_at / 1e6, ms=True)
        return out

    def event(self) -> dict:
        """The $SYS message shape."""
        return {"name": self.name, "details": self.details, "message": self.message,
                "activate_at": self.activate_at,
                "deactivate_at": "infinity" if self.deactivate_at is None else self.deactivate_at,
                "activated": self.deactivate_at is None}


def _now_us() -> int:
    return time.time_ns() // 1000


class Alarms:
    def __init__(self, broker):
        self.broker = broker
        self.active: dict[str, Alarm] = {}
        self.history: OrderedDict[int, Alarm] = OrderedDict()  # by activate_at, oldest first
        self._handles: dict[str, object] = {}
        self._cpu_prev = None
        self.db = None

    def attach(self, db) -> None:
        """Load the history from the store; alarms left active by the last run end now."""
        self.db = db
        db.migrate("alarm")
        db.execute("UPDATE alarms SET deactivate_at=? WHERE deactivate_at IS NULL",
                   (_now_us(),))
        self.history.clear()
        for r in db.query("SELECT * FROM alarms ORDER BY activate_at"):
            self.history[r["activate_at"]] = Alarm(r["name"], json.loads(r["details"]),
                                                   r["message"], r["activate_at"],
                                                   r["deactivate_at"])
        self._trim()
        self._expire_history()

    def _trim(self) -> None:
        limit = self.broker.config.alarm.size_limit
        while self.history and len(self.history) > limit:
            at, _ = self.history.popitem(last=False)
            self._db("DELETE FROM alarms WHERE activate_at=?", (at,))

    def _db(self, sql: str, params=()) -> None:
        if self.db is not None and not self.db.closed:
            try:
                self.db.execute(sql, params)
            except Exception:  # an alarm must never break the caller
                log.exception("could not store an alarm change")

    # -- the API other features use -------------------------------------------------------------

    def activate(self, name: str, details: dict | None = None, message: str | None = None) -> bool:
        """Raise an alarm; False if it is already active."""
        if name in self.active:
            return False
        at = _now_us()
        taken = {a.activate_at for a in self.active.values()}
        while at in self.history or at in taken:  # alarms are keyed by activation time
            at += 1
        alarm = Alarm(name, details or {}, message or name, at)
        self.active[name] = alarm
        self._db("INSERT OR REPLACE INTO alarms (activate_at, name, details, message) "
                 "VALUES (?, ?, ?, ?)", (at, name, json.dumps(alarm.details, default=str),
                                         alarm.message))
        self._actions("activate", alarm)
        return True

    def deactivate(self, name: str, details: dict | None = None,
                   message: str | None = None) -> bool:
        """Clear an active alarm (moving it to the history); False if it is not active."""
        alarm = self.active.pop(name, None)
        if alarm is None:
            return False
        now = _now_us()
        alarm.deactivate_at = now
        self.history[alarm.activate_at] = alarm
        self._db("UPDATE alarms SET deactivate_at=? WHERE activate_at=?",
                 (now, alarm.activate_at))
        self._trim()
        # The event carries the details/message of the clearing, the history the raising.
        ev = Alarm(name, details if details is not None else alarm.details,
                   message or alarm.message, alarm.activate_at, now)
        self._actions("deactivate", ev)
        return True

    def delete_deactivated(self) -> None:
        self.history.clear()
        self._db("DELETE FROM alarms WHERE deactivate_at IS NOT NULL")

    def list(self, activated: bool) -> list[Alarm]:
        if activated:
            return list(self.active.values())
        self._expire_history()
        return list(self.history.values())

    def _expire_history(self) -> None:
        period = self.broker.config.alarm.validity_period
        cutoff = _now_us() - int(period * 1e6)
        while self.history:
            at = next(iter(self.history))
            if at > cutoff:
                break
            self.history.popitem(last=False)
            self._db("DELETE FROM alarms WHERE activate_at=?", (at,))

    def _actions(self, op: str, alarm: Alarm) -> None:
        actions = self.broker.config.alarm.actions
        if "log" in actions:
            if op == "activate":
                log.warning("alarm_is_activated: name=%s message=%s", alarm.name, alarm.message)
            else:
                log.warning("alarm_is_deactivated: name=%s", alarm.name)
        if "publish" in actions and self.broker.running:
            topic = f"$SYS/brokers/{self.broker.node_name}/alarms/{op}"
            self.broker.publish_from_system(topic, json.dumps(alarm.event()).encode(), 0, False,
                                            {"content_type": "application/json"})

    # -- monitors -------------------------------------------------------------------------------

    def start(self) -> None:
        self._schedule("mem", self._mem_interval, self.check_memory)
        self._schedule("cpu", lambda: self.broker.config.sysmon.os.cpu_check_interval,
                       self.check_cpu)
        self._schedule("conn", lambda: self.broker.config.sysmon.vm.process_check_interval,
                       self.check_connections)
        self._schedule("history", lambda: min(self.broker.config.alarm.validity_period, 3600.0),
                       self._expire_history)
        self._read_cpu()  # the first sample only sets the baseline

    def stop(self) -> None:
        for h in self._handles.values():
            if h is not None:
                h.cancel()
        self._handles.clear()

    def _mem_interval(self):
        return self.broker.config.sysmon.os.mem_check_interval  # None when "disabled"

    def _schedule(self, key: str, interval_fn, check) -> None:
        loop = self.broker.loop

        def tick():
            try:
                check()
            except Exception:
                log.exception("alarm check %s failed", key)
            arm()

        def arm():
            interval = interval_fn()
            # A disabled check is looked at again later, in case the config changes.
            delay = interval if interval else 60.0
            self._handles[key] = loop.call_later(delay, tick if interval else arm)

        arm()

    def check_memory(self) -> None:
        mem = _meminfo()
        if mem is None:
            return
        total, available = mem
        osc = self.broker.config.sysmon.os
        usage = math.floor((total - available) / total * 10000) / 100
        hwm = osc.sysmem_high_watermark * 100
        details = {"usage": usage, "high_watermark": hwm}
        msg = f"{usage:.2f}% mem usage"
        if 0 <= osc.sysmem_high_watermark <= 1 and usage > hwm:
            self.activate("high_system_memory_usage", details, msg)
        else:
            self.deactivate("high_system_memory_usage", details, msg)
        rss = _rss()
        if rss is None:
            return
        phwm = osc.procmem_high_watermark * 100
        if rss / total * 100 > phwm:
            self.activate("high_process_memory_usage",
                          {"pid": str(os.getpid()), "high_watermark": _num(phwm)},
                          f"Process memory usage is higher than {_num(phwm)}%")
        else:
            self.deactivate("high_process_memory_usage")

    def _read_cpu(self):
        sample = _cpu_times()
        prev, self._cpu_prev = self._cpu_prev, sample
        if prev is None or sample is None:
            return None
        busy = sample[0] - prev[0]
        total = sample[1] - prev[1]
        return busy / total * 100 if total > 0 else None

    def check_cpu(self) -> None:
        usage = self._read_cpu()
        if not usage:  # no sample, or 0 (EMQX ignores a zero reading too)
            return
        osc = self.broker.config.sysmon.os
        hwm, lwm = osc.cpu_high_watermark * 100, osc.cpu_low_watermark * 100
        details = {"usage": round(usage, 2), "high_watermark": hwm, "low_watermark": lwm}
        msg = f"{usage:.2f}% cpu usage"
        if usage > hwm:
            self.activate("high_cpu_usage", details, msg)
        elif usage < lwm:
            self.deactivate("high_cpu_usage", details, msg)

    def check_connections(self) -> None:
        seen = set()
        for lid, lst in list(self.broker.listeners.items()):
            name = f"too_many_connections/{lid}"
            seen.add(name)
            limit = getattr(lst, "max_connections", 0)
            current = lst.current_connections
            details = {"listener": lid, "current_connections": current,
                       "max_connections": limit}
            msg = (f"Listener {lid} has {current} connections, its max_connections is "
                   f"{limit}")
            if limit and current >= limit:
                self.activate(name, details, msg)
            else:
                self.deactivate(name, details, msg)
        for name in [n for n in self.active if n.startswith("too_many_connections/")]:
            if name not in seen:  # the listener is gone
                self.deactivate(name)


def _num(x: float):
    return int(x) if float(x).is_integer() else x


def _meminfo():
    try:
        with open("/proc/meminfo") as f:
            info = {}
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    total = info.get("MemTotal")
    if not total:
        return None
    available = info.get("MemAvailable",
                         info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0))
    return total, available


def _rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _cpu_times():
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total
