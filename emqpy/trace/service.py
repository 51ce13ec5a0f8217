"""The node's traces as EMQX keeps them (emqx_trace): at most 30, stored durably (the SQLite
store, table ``trace``), each running between its ``start_at`` and ``end_at`` (epoch seconds)
while enabled, writing ``<data_dir>/trace/trace_<name>_<YYYY-MM-DD>.log`` (the local date of its
start). One timer wakes at the next start or end (at most every 15 minutes): finished traces
are disabled, due ones started, and files no trace owns are removed.

Traces started by ``emqpy ctl trace start`` are handlers only (named ``CLI-<filter>``, writing
where the operator said, not stored), as in EMQX.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_filter
from emqpy.store import register_migrations
from emqpy.timefmt import parse_rfc3339, rfc3339
from emqpy.trace.tracer import Handler, Tracer, file_size, trace_dir

log = logging.getLogger("emqpy.trace")

MAX_TRACES = 30
DEFAULT_DURATION = 10 * 60
MAX_TIMER = 15 * 60
TYPES = ("clientid", "topic", "ip_address", "ruleid")
NAME_RE = re.compile(r"^[A-Za-z]+[A-Za-z0-9-_]*$")

register_migrations("trace", [
    "CREATE TABLE trace (name TEXT PRIMARY KEY, type TEXT NOT NULL, filter TEXT NOT NULL, "
    "enable INTEGER NOT NULL, payload_encode TEXT NOT NULL, formatter TEXT NOT NULL, "
    "start_at INTEGER NOT NULL, end_at INTEGER NOT NULL)",
])


class TraceError(Exception):
    """``code``: the API's error code (INVALID_PARAMS, ALREADY_EXISTS, DUPLICATE_CONDITION,
    NOT_FOUND)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Trace:
    name: str
    type: str
    filter: str
    enable: bool
    payload_encode: str
    formatter: str
    start_at: int
    end_at: int

    def status(self, now: int) -> str:
        if not self.enable:
            return "stopped"
        if now < self.start_at:
            return "waiting"
        return "stopped" if now >= self.end_at else "running"

    @property
    def filename(self) -> str:
        return filename(self.name, self.start_at)


def filename(name: str, start_at: int) -> str:
    day = datetime.fromtimestamp(start_at).astimezone().date().isoformat()
    return f"trace_{name}_{day}.log"


def now_second() -> int:
    return int(time.time())


def _epoch(value, what: str) -> int:
    if isinstance(value, bool):
        raise TraceError("INVALID_PARAMS", f"{what}: rfc3339 timestamp or epoch second expected")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            dt = parse_rfc3339(text)
        except ValueError:
            raise TraceError("INVALID_PARAMS", f"{what}: {value} is not an rfc3339 timestamp "
                                               "or epoch second") from None
        if dt.tzinfo is None:
            dt = dt.astimezone()
        return int(dt.timestamp())
    raise TraceError("INVALID_PARAMS", f"{what}: rfc3339 timestamp or epoch second expected")


def check_filter(type_: str, value) -> str:
    """The filter of a trace of ``type_`` checked as EMQX checks it; TraceError if invalid."""
    if not isinstance(value, str) or value == "":
        raise TraceError("INVALID_PARAMS", f"required {type_} field")
    if type_ == "topic":
        try:
            validate_topic_filter(value)
        except MQTTError as e:
            raise TraceError("INVALID_PARAMS", f"topic: {value} invalid by {e}") from None
    elif type_ == "ip_address":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise TraceError("INVALID_PARAMS", "ip address: einval") from None
    return value


def to_trace(params: dict, now: int) -> Trace:
    """A new trace from the API's body (EMQX's emqx_trace:to_trace); TraceError if invalid."""
    name = params.get("name")
    if name is None:
        raise TraceError("INVALID_PARAMS", "name required")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise TraceError("INVALID_PARAMS", "Name should be ^[A-Za-z]+[A-Za-z0-9-_]*$")
    type_ = params.get("type")
    if type_ not in TYPES:
        raise TraceError("INVALID_PARAMS", "type=[topic,clientid,ip_address] required")
    filter_ = check_filter(type_, params.get(type_))
    encode = params.get("payload_encode") or "text"
    if encode not in ("text", "hex", "hidden"):
        raise TraceError("INVALID_PARAMS", "payload_encode: one of text, hex, hidden")
    formatter = params.get("formatter") or "text"
    if formatter not in ("text", "json"):
        raise TraceError("INVALID_PARAMS", "formatter: one of text, json")
    start = params.get("start_at")
    start = now if start is None else _epoch(start, "start_at")
    end = params.get("end_at")
    if end is None:
        end = start + DEFAULT_DURATION
    else:
        end = _epoch(end, "end_at")
        if end <= now:
            raise TraceError("INVALID_PARAMS", "end_at time has already passed")
    if end <= start:
        raise TraceError("INVALID_PARAMS", "failed by start_at >= end_at")
    return Trace(name, type_, filter_, True, encode, formatter, start, end)


class TraceService:
    """``broker.traces``: the stored traces, their schedule and the node's Tracer."""

    def __init__(self, broker):
        self.broker = broker
        self.db = broker.store
        self.dir = trace_dir(broker.data_dir)
        self.tracer = Tracer(broker)
        self._timer = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.db is not None:
            self.db.migrate("trace")
        (self.dir / "zip").mkdir(parents=True, exist_ok=True)
        self.check()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.tracer.stop_all()

    # -- the stored traces --------------------------------------------------------------------

    def list(self) -> list[Trace]:
        if self.db is None:
            return []
        return [Trace(r["name"], r["type"], r["filter"], bool(r["enable"]),
                      r["payload_encode"], r["formatter"], r["start_at"], r["end_at"])
                for r in self.db.query("SELECT * FROM trace")]

    def get(self, name: str) -> Trace | None:
        return next((t for t in self.list() if t.name == name), None)

    def create(self, params: dict) -> Trace:
        traces = self.list()
        if len(traces) >= MAX_TRACES:
            raise TraceError("INVALID_PARAMS", "The number of traces created has reached the "
                                               "maximum please delete the useless ones first")
        trace = to_trace(params, now_second())
        for t in traces:
            if t.name == trace.name:
                raise TraceError("ALREADY_EXISTS", f"{trace.name} Already Exists")
        for t in traces:  # one trace per filter and start second
            if (t.start_at, t.type, t.filter) == (trace.start_at, trace.type, trace.filter):
                raise TraceError("DUPLICATE_CONDITION", f"{t.name} Duplication Condition")
        self.db.execute(
            "INSERT INTO trace (name, type, filter, enable, payload_encode, formatter, "
            "start_at, end_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
            (trace.name, trace.type, trace.filter, trace.payload_encode, trace.formatter,
             trace.start_at, trace.end_at))
        self.check()  # running when the answer goes out
        return trace

    def delete(self, name: str) -> None:
        if self.db is None or not self.db.execute("DELETE FROM trace WHERE name=?", (name,)):
            raise TraceError("NOT_FOUND", f"{name} NOT FOUND")
        self.check()

    def clear(self) -> None:
        if self.db is not None:
            self.db.execute("DELETE FROM trace")
        self.check()

    def disable(self, name: str) -> None:
        trace = self.get(name)
        if trace is None:
            raise TraceError("NOT_FOUND", f"{name} NOT FOUND")
        if trace.enable:
            self.db.execute("UPDATE trace SET enable=0 WHERE name=?", (name,))
            self.check()

    def path(self, trace: Trace) -> Path:
        return self.dir / trace.filename

    def log_size(self, trace: Trace) -> int:
        return file_size(self.path(trace))

    # -- the schedule -------------------------------------------------------------------------

    def check(self) -> None:
        """Start the traces due, stop the others, remove orphan files, set the next wake-up."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = now_second()
        traces = self.list()
        running = {}
        for t in traces:
            if not t.enable or t.start_at > now:
                continue
            if t.end_at <= now:  # finished: disabled for good
                self.db.execute("UPDATE trace SET enable=0 WHERE name=?", (t.name,))
                t.enable = False
                continue
            running[t.name] = t
        tracer = self.tracer
        for name, h in list(tracer.handlers.items()):
            if name.startswith("CLI-"):
                continue
            t = running.get(name)
            if t is None or h.path != self.path(t) or h.type != t.type or h.filter != t.filter:
                if h.size > 0:
                    h.write("API", "trace_stopping", {h.type: h.filter})
                tracer.stop(name)
        for name, t in running.items():
            if name not in tracer.handlers:
                tracer.start(Handler(t.name, t.type, t.filter, self.path(t), t.formatter,
                                     t.payload_encode))
        self._clean_files(traces)
        wake = MAX_TIMER
        for t in traces:
            if t.enable:
                for at in (t.start_at, t.end_at):
                    if at > now:
                        wake = min(wake, at - now)
        loop = self.broker.loop
        if loop is not None:
            self._timer = loop.call_later(wake, self._tick)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.check()
        except Exception:
            log.exception("trace schedule failed")
            loop = self.broker.loop
            if loop is not None and self._timer is None:
                self._timer = loop.call_later(MAX_TIMER, self._tick)

    def _clean_files(self, traces: list[Trace]) -> None:
        keep = {t.filename for t in traces} | {"zip"}
        try:
            names = [p for p in self.dir.iterdir() if p.name not in keep]
        except OSError:
            return
        for p in names:
            if p.is_file():
                try:
                    p.unlink()
                except OSError as e:
                    log.warning("cannot remove the old trace file %s: %s", p, e)

    # -- reading a trace's log ----------------------------------------------------------------

    def filename_of(self, name: str) -> Path:
        trace = self.get(name)
        if trace is None:
            raise TraceError("NOT_FOUND", f"{name} NOT FOUND")
        self.tracer.flush()
        return self.path(trace)

    def read(self, name: str, position: int, size: int) -> tuple[bytes, int]:
        """(bytes read, the next position) of a trace's log, as EMQX's /trace/{name}/log."""
        path = self.filename_of(name)
        try:
            with open(path, "rb") as f:
                f.seek(max(position, 0))
                data = f.read(size)
                if not data and size:  # end of file: the position becomes the size
                    return b"", f.seek(0, 2)
                return data, position + len(data)
        except FileNotFoundError:  # a waiting trace: nothing yet
            return b"", position


def format_trace(trace: Trace, node: str, size: int, now: int) -> dict:
    """A trace as the API shows it."""
    return {"name": trace.name, "type": trace.type, trace.type: trace.filter,
            "payload_encode": trace.payload_encode, "formatter": trace.formatter,
            "start_at": rfc3339(trace.start_at), "end_at": rfc3339(trace.end_at),
            "log_size": {node: size}, "status": trace.status(now)}
