"""The node side of `emqpy ctl`: ``POST /api/v5/emqpy/ctl`` runs one operator command inside the
running broker and returns what `emqx ctl` would print (like emqx_ctl, which runs commands in
the node). Hidden from the OpenAPI document: it is emqpy's own, not part of EMQX's API.

Commands: status, broker [stats|metrics], clients list|show|kick, topics list|show,
subscriptions list|show|add|del, listeners [start|stop|restart <Id>], rules list|show, admins
add|passwd|del (when the broker runs; `emqpy ctl` falls back to the store). The retainer and banned
commands are run by the ctl process through the public endpoints of those features.
"""
from __future__ import annotations

import math
import time
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from emqpy import listeners
from emqpy.api.auth import authenticated
from emqpy.config import config_lock
from emqpy.mgmt import listeners_api as la
from emqpy.mgmt import service
from emqpy.mgmt.ctl_usage import usage_for
from emqpy.mqtt.packets import SubOpts

router = APIRouter(dependencies=[Depends(authenticated)], include_in_schema=False)

CTL_PATH = "/emqpy/ctl"


class Usage(Exception):
    pass


def _undef(v) -> str:
    return "undefined" if v is None else str(v)


def _ms(t: float | None) -> str:
    return "undefined" if t is None else str(int(t * 1000))


def human_duration(seconds: float) -> str:
    """emqx_utils_calendar:human_readable_duration_string/1."""
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [(d, "days"), (h, "hours"), (m, "minutes"), (s, "seconds")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    return ", ".join(f"{n} {unit}" for n, unit in parts)


def _erl(v) -> str:
    """A value as Erlang's ~w prints it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "undefined"
    if isinstance(v, float) and v == math.inf:
        return "infinity"
    return str(v)


# -- commands -------------------------------------------------------------------------------------

def cmd_status(broker, args) -> str:
    if args:
        raise Usage(usage_for("status"))
    state = "started" if broker.running else "stopping"
    return f"Node '{broker.node_name}' {broker.version} is {state}\n"


def cmd_broker(broker, args) -> str:
    if not args:
        lines = [("sysdescr", "emqpy"), ("version", broker.version),
                 ("datetime", time.strftime("%Y-%m-%d %H:%M:%S")),
                 ("uptime", human_duration(time.time() - broker.started_at))]
        return "".join(f"{k:<10}: {v}\n" for k, v in lines)
    if args == ["stats"]:
        return "".join(f"{k:<30}: {_erl(v)}\n" for k, v in sorted(broker.stats().items()))
    if args == ["metrics"]:
        return "".join(f"{k:<30}: {_erl(v)}\n"
                       for k, v in sorted(broker.metrics.snapshot().items()))
    raise Usage(usage_for("broker"))


def client_line(broker, sess) -> str:
    ch = sess.channel
    pkt = getattr(ch, "connect_pkt", None) if ch is not None else None
    peer = f"{ch.peerhost}:{ch.peerport}" if ch is not None and ch.peerhost else "undefined"
    expiry = sess.expiry_interval
    fields = [
        sess.clientid,
        f"username={_undef(ch.username) if ch is not None else 'undefined'}",
        f"peername={peer}",
        f"clean_start={_erl(bool(pkt.clean_start)) if pkt is not None else 'undefined'}",
        f"keepalive={ch.keepalive if ch is not None else 'undefined'}",
        f"session_expiry_interval={'infinity' if expiry == math.inf else int(expiry)}",
        f"subscriptions={len(sess.subscriptions)}",
        f"inflight={len(sess.inflight)}",
        f"awaiting_rel={len(sess.awaiting_rel)}",
        "delivered_msgs=undefined",  # emqpy does not count messages per client
        f"enqueued_msgs={len(sess.mqueue)}",
        f"dropped_msgs={sess.dropped}",
        f"connected={_erl(ch is not None)}",
        f"created_at={_ms(sess.created_at)}",
        f"connected_at={_ms(getattr(ch, 'connected_at', None))}",
    ]
    return "Client(" + ", ".join(fields) + ")\n"


def cmd_clients(broker, args) -> str:
    if args == ["list"]:
        if not broker.sessions:
            return "No clients.\n"
        return "".join(client_line(broker, s) for s in list(broker.sessions.values()))
    if len(args) == 2 and args[0] == "show":
        sess = broker.sessions.get(args[1])
        return "Not Found.\n" if sess is None else client_line(broker, sess)
    if len(args) == 2 and args[0] == "kick":
        service.kick_client(broker, args[1])  # as emqx ctl: "ok" whether or not it existed
        return "ok\n"
    raise Usage(usage_for("clients"))


def cmd_topics(broker, args) -> str:
    node = broker.node_name
    if args == ["list"]:
        routes = list(broker.router.routes)
        if not routes:
            return "No topics.\n"
        return "".join(f"{t} -> {node}\n" for t in routes)
    if len(args) == 2 and args[0] == "show":
        return f"{args[1]} -> {node}\n" if args[1] in broker.router.routes else ""
    raise Usage(usage_for("topics"))


def _sub_line(clientid: str, sub) -> str:
    o = sub.options()
    topic = service.subscription_topic(sub)
    return f"{clientid} -> topic:{topic} qos:{o['qos']} nl:{o['nl']} rh:{o['rh']} rap:{o['rap']}\n"


def cmd_subscriptions(broker, args) -> str:
    if args == ["list"]:
        lines = [_sub_line(cid, sub) for cid, sess in list(broker.sessions.items())
                 for sub in sess.subscriptions.values()]
        return "".join(lines) if lines else "No subscriptions.\n"
    if len(args) == 2 and args[0] == "show":
        sess = broker.sessions.get(args[1])
        if sess is None or not sess.subscriptions:
            return "Not Found.\n"
        return "".join(_sub_line(args[1], sub) for sub in sess.subscriptions.values())
    if len(args) == 4 and args[0] == "add":
        try:
            qos = int(args[3])
        except ValueError:
            qos = -1
        if qos not in (0, 1, 2):
            return "QoS should be 0, 1, 2\n"
        ch = broker.channels.get(args[1])
        if ch is None or ch.session is None:
            return "Error: Channel not found!"
        try:
            codes = service.subscribe(broker, ch.session, [(args[2], SubOpts(qos))])
        except service.InvalidRequest as e:
            return f"Error: {e}\n"
        return "ok\n" if codes and codes[0] < 0x80 else f"Error: reason code 0x{codes[0]:02x}\n"
    if len(args) == 3 and args[0] == "del":
        ch = broker.channels.get(args[1])
        if ch is None or ch.session is None:
            return "Error: Channel not found!"
        service.unsubscribe(broker, ch.session, [args[2]])
        return "ok\n"
    raise Usage(usage_for("subscriptions"))


def _listener_block(broker, lid: str, conf: dict) -> str:
    def row(k, v):
        return f"  {k:<16}: {v}\n"
    listen_on = conf["bind"]
    lst = broker.listeners.get(lid)
    if conf["running"] and listen_on.endswith(":0") and lst is not None:
        listen_on = f"{listen_on[:-2]}:{lst.port}"  # an OS-chosen port: show the real one
    out = f"{lid}\n" + row("listen_on", listen_on) + row("acceptors", conf.get("acceptors")) \
        + row("proxy_protocol", _erl(conf.get("proxy_protocol"))) \
        + row("running", _erl(conf["running"]))
    if conf["running"]:
        out += row("current_conn", conf["current_connections"])
        out += row("max_conns", _erl(conf.get("max_connections", "infinity")))
    return out


async def cmd_listeners(broker, args) -> str:
    if not args:
        return "".join(_listener_block(broker, lid, conf)
                       for lid, _t, _n, conf in la.raw_listeners(broker))
    if len(args) == 2 and args[0] in ("start", "stop", "restart"):
        action, lid = args
        ltype, _, name = lid.partition(":")
        cfg = listeners.configured(broker.config, ltype, name) if name else None
        if cfg is None:
            return f"Invalid listener: {lid!r}\n"
        # As emqx_listeners: a runtime action; the config (enable) is not changed.
        async with config_lock(broker):
            try:
                if action == "stop":
                    if not await listeners.stop_listener(broker, lid):
                        return f"Failed to stop {lid} listener: not_found\n"
                    return f"Stop {lid} listener successfully.\n"
                if action == "start":
                    lst = broker.listeners.get(lid)
                    if lst is not None and lst.running:
                        return f"Failed to start {lid} listener: already_started\n"
                    await listeners.start_listener(broker, ltype, name, cfg, start=True)
                    return f"Started {lid} listener successfully.\n"
                await listeners.restart_listener(broker, lid)
                return f"Restarted {lid} listener successfully.\n"
            except listeners.ListenerError as e:
                return f"Failed to {action} {lid} listener: {e}\n"
    raise Usage(usage_for("listeners"))


def cmd_rules(broker, args) -> str:
    from emqpy.rule_engine.cli import cmd_rules as rules  # (the rule engine's own printing)
    out = rules(broker, args)
    if out is None:
        raise Usage(usage_for("rules"))
    return out


def cmd_trace(broker, args) -> str:
    from emqpy.trace.cli import cmd_trace as trace  # (the trace feature's own printing)
    out = trace(broker, args)
    if out is None:
        raise Usage(usage_for("trace"))
    return out


def cmd_traces(broker, args) -> str:
    from emqpy.trace.cli import cmd_traces as traces
    out = traces(broker, args)
    if out is None:
        raise Usage(usage_for("traces"))
    return out


async def cmd_data(broker, args) -> str:
    from emqpy.backup.cli import cmd_data as data  # (the backup feature's own printing)
    out = await data(broker, args)
    if out is None:
        raise Usage(usage_for("data"))
    return out


async def cmd_cluster(broker, args) -> str:
    from emqpy.cluster.cli import cmd_cluster as cluster  # (the cluster feature's own printing)
    out = await cluster(broker, args)
    if out is None:
        raise Usage(usage_for("cluster"))
    return out


def cmd_admins(broker, args) -> str:
    from emqpy.dashboard import admin, cli  # (the dashboard's own commands)
    if not cli.valid(args):
        raise Usage(usage_for("admins"))
    try:
        cli.run(broker.store, args)
    except admin.AdminError as e:
        raise Usage(f"Error: {e.message}\n") from None
    return "ok\n"


COMMANDS = {"status": cmd_status, "broker": cmd_broker, "clients": cmd_clients,
            "topics": cmd_topics, "subscriptions": cmd_subscriptions, "listeners": cmd_listeners,
            "rules": cmd_rules, "trace": cmd_trace, "traces": cmd_traces, "data": cmd_data,
            "cluster": cmd_cluster, "admins": cmd_admins}


async def run(broker, argv: list[str]) -> tuple[int, str]:
    """(exit status, output) of one command."""
    if not argv or argv[0] not in COMMANDS:
        return 1, ""
    fn = COMMANDS[argv[0]]
    try:
        out = fn(broker, list(argv[1:]))
        if hasattr(out, "__await__"):
            out = await out
        return 0, out
    except Usage as u:
        return 1, str(u)


@router.post(CTL_PATH)
async def ctl(request: Request, body: Annotated[dict, Body()]):
    args = body.get("args")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        from emqpy.api.errors import ApiError
        raise ApiError(400, "BAD_REQUEST", "args: a list of strings is expected")
    status, output = await run(request.app.state.ctx.broker, args)
    return {"status": status, "output": output}
