"""`emqpy ctl trace ...` and `emqpy ctl traces ...`, printed as `emqx ctl` prints them
(emqx_mgmt_cli): ``trace`` starts a handler of this node writing to a file the operator names
(not stored, named ``CLI-<filter>``); ``traces`` manages the stored traces the API shows.
Run inside the broker (emqpy.mgmt.ctl_api)."""
from __future__ import annotations

import json

from emqpy.trace.service import TraceError, check_filter, format_trace, now_second
from emqpy.trace.tracer import LEVELS, Handler

_TYPES = {"client": "clientid", "topic": "topic", "ip_address": "ip_address",
          "ruleid": "ruleid"}
DEFAULT_DURATION = 1800


def cmd_trace(broker, args: list[str]):
    """The output, or None for a usage error."""
    svc = broker.traces
    if args == ["list"]:
        handlers = list(svc.tracer.handlers.values()) if svc is not None else []
        if not handlers:
            return "Trace is empty\n"
        return "".join(f"Trace({h.type}={h.filter}, level={h.level}, "
                       f"destination={json.dumps(str(h.path))})\n" for h in handlers)
    if svc is None:
        return None
    if len(args) == 3 and args[0] == "stop" and args[1] in _TYPES:
        type_, flt = _TYPES[args[1]], args[2]
        h = svc.tracer.handlers.get("CLI-" + flt)
        if h is None or h.type != type_:
            return f"[error] stop tracing {type_} {flt}: not_found\n"
        if h.size > 0:
            h.write("CLI", "trace_stopping", {type_: flt})
        svc.tracer.stop(h.name)
        return f"stop tracing {type_} {flt} successfully\n"
    if 4 <= len(args) <= 6 and args[0] == "start" and args[1] in _TYPES:
        type_, flt, path = _TYPES[args[1]], args[2], args[3]
        level = args[4] if len(args) > 4 else "all"
        formatter = args[5] if len(args) > 5 else "text"
        if level not in LEVELS or formatter not in ("text", "json"):
            return None
        name = "CLI-" + flt
        if name in svc.tracer.handlers:
            return f"[error] trace {flt} {name}: already_exist\n"
        try:
            check_filter(type_, flt)
        except TraceError as e:
            return f"[error] trace {flt} {name}: {e.message}\n"
        svc.tracer.start(Handler(name, type_, flt, path, formatter, "text", level))
        return f"trace {flt} {name} successfully\n"
    return None


def _log_size(size: dict) -> str:
    return "#{" + ",".join(f"'{k}' => {v}" for k, v in size.items()) + "}"


def cmd_traces(broker, args: list[str]):
    svc = broker.traces
    if svc is None:
        return None
    if args == ["list"]:
        now = now_second()
        traces = sorted(svc.list(), key=lambda t: -t.start_at)
        if not traces:
            return "Cluster Trace is empty\n"
        out = []
        for t in traces:
            d = format_trace(t, broker.node_name, svc.log_size(t), now)
            out.append(f"Trace({t.name}: {t.type}={t.filter}, {d['status']}, "
                       f"LogSize:{_log_size(d['log_size'])})\n")
        return "".join(out)
    if len(args) == 2 and args[0] in ("stop", "delete"):
        name = args[1]
        try:
            (svc.disable if args[0] == "stop" else svc.delete)(name)
        except TraceError:
            verb = "Stop" if args[0] == "stop" else "Del"
            return f"[error] {verb} cluster_trace {name}: not_found\n"
        return (f"Stop cluster_trace {name} successfully\n" if args[0] == "stop"
                else f"Del cluster_trace {name} successfully\n")
    if 4 <= len(args) <= 6 and args[0] == "start" and args[2] in _TYPES:
        name, type_, flt = args[1], _TYPES[args[2]], args[3]
        duration = args[4] if len(args) > 4 else str(DEFAULT_DURATION)
        formatter = args[5] if len(args) > 5 else "text"
        if not duration.isdigit() or formatter not in ("text", "json"):
            return None
        now = now_second()
        try:
            svc.create({"name": name, "type": type_, type_: flt, "start_at": now,
                        "end_at": now + int(duration), "formatter": formatter})
        except TraceError as e:
            return f"[error] cluster_trace {name} {type_}={flt} {json.dumps(e.message)}\n"
        return f"cluster_trace {type_} {flt} {name} successfully\n"
    return None
