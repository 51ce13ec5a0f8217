"""``emqpy ctl cluster join <Node>|leave|force-leave <Node>|status [--json]``, printing what
``emqx ctl cluster`` prints (emqx_mgmt_cli:cluster/1); run inside the node (mgmt/ctl_api.py)."""
from __future__ import annotations

import json

from emqpy.cluster.membership import Ignored, JoinError, atom


def status(broker) -> dict:
    m = getattr(broker, "cluster_membership", None)
    if m is not None:
        return {"running_nodes": m.running_nodes(), "stopped_nodes": m.stopped_nodes()}
    link = broker.cluster
    if link is not None:
        return {"running_nodes": link.running_nodes(), "stopped_nodes": link.stopped_nodes()}
    return {"running_nodes": [broker.node_name], "stopped_nodes": []}


def status_line(broker) -> str:
    """Erlang's ~p of the status map."""
    info = status(broker)
    return "Cluster status: #{" + ",".join(
        f"{k} => [" + ",".join(atom(n) for n in sorted(info[k])) + "]"
        for k in ("running_nodes", "stopped_nodes")) + "}\n"


# verb -> (arguments after it, Membership method, what emqx ctl says on success / failure)
_CHANGES = {
    "join": (1, "join", "Join the cluster successfully.", "Failed to join the cluster"),
    "leave": (0, "leave", "Leave the cluster successfully.", "Failed to leave the cluster"),
    "force-leave": (1, "force_leave", "Remove the node from cluster successfully.",
                    "Failed to remove the node from cluster"),
}


async def cmd_cluster(broker, args) -> str | None:
    """The command's output, or None for a usage error."""
    m = getattr(broker, "cluster_membership", None)
    if args == ["status"]:
        return status_line(broker)
    if args == ["status", "--json"]:
        info = {k: sorted(v) for k, v in status(broker).items()}
        return json.dumps(info, indent=2, separators=(",", " : ")) + "\n"
    if m is None and args and args[0] in ("join", "leave", "force-leave"):
        return "Cluster membership is given by cluster.nats.servers here.\n"
    verb = args[0] if args else None
    if verb in _CHANGES and len(args) == 1 + _CHANGES[verb][0]:
        _, method, done, failed = _CHANGES[verb]
        try:
            await getattr(m, method)(*args[1:])
        except Ignored:
            return "Ignore.\n"
        except JoinError as e:
            return f"{failed}: {e}\n"
        return f"{done}\n" + status_line(broker)
    return None
