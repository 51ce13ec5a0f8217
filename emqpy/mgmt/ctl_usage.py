"""The commands of `emqpy ctl` and their usage lines, in emqx_ctl's layout: one table for the
ctl process (help, unknown commands) and for the node that runs the commands (a command's
usage when its arguments are wrong). Imports nothing, so the ctl process starts fast."""
from __future__ import annotations

USAGE_PAIRS = [
    ("status", "Show broker status"),
    ("broker", "Show broker version, uptime and description"),
    ("broker stats", "Show broker statistics of clients, topics, subscribers"),
    ("broker metrics", "Show broker metrics"),
    ("clients list", "List all clients"),
    ("clients show <ClientId>", "Show a client"),
    ("clients kick <ClientId>", "Kick out a client"),
    ("topics list", "List all topics"),
    ("topics show <Topic>", "Show a topic"),
    ("subscriptions list", "List all subscriptions"),
    ("subscriptions show <ClientId>", "Show subscriptions of a client"),
    ("subscriptions add <ClientId> <Topic> <QoS>", "Add a static subscription manually"),
    ("subscriptions del <ClientId> <Topic>", "Delete a static subscription manually"),
    ("listeners", "List listeners"),
    ("listeners stop    <Identifier>", "Stop a listener"),
    ("listeners start   <Identifier>", "Start a listener"),
    ("listeners restart <Identifier>", "Restart a listener"),
    ("retainer info", "Show the count of retained messages"),
    ("retainer topics", "Same as retainer topic 1 1000"),
    ("retainer topics <Start> <Limit>", "Show topics of retained messages by the specified range"),
    ("retainer clean", "Clean all retained messages"),
    ("retainer clean <Topic>", "Clean retained messages by the specified topic filter"),
    ("rules list", "List rules"),
    ("rules show <RuleID>", "Show a rule"),
    ("trace list", "List all traces started on local node"),
    ("trace start client <ClientId> <File> [<Level>] [<Formatter>]",
     "Traces for a client on local node (Formatter=text|json)"),
    ("trace stop  client <ClientId>", "Stop tracing for a client on local node"),
    ("trace start topic  <Topic>    <File> [<Level>] [<Formatter>]",
     "Traces for a topic on local node (Formatter=text|json)"),
    ("trace stop  topic  <Topic> ", "Stop tracing for a topic on local node"),
    ("trace start ip_address  <IP>    <File> [<Level>] [<Formatter>]",
     "Traces for a client ip on local node (Formatter=text|json)"),
    ("trace stop  ip_address  <IP> ", "Stop tracing for a client ip on local node"),
    ("trace start ruleid  <RuleID>    <File> [<Level>] [<Formatter>]",
     "Traces for a rule ID on local node (Formatter=text|json)"),
    ("trace stop  ruleid  <RuleID> ", "Stop tracing for a rule ID on local node"),
    ("traces list", "List all cluster traces started"),
    ("traces start <Name> client <ClientId> [<Duration>] [<Formatter>]",
     "Traces for a client in cluster (Formatter=text|json)"),
    ("traces start <Name> topic <Topic> [<Duration>] [<Formatter>]",
     "Traces for a topic in cluster (Formatter=text|json)"),
    ("traces start <Name> ruleid <RuleID> [<Duration>] [<Formatter>]",
     "Traces for a rule ID in cluster (Formatter=text|json)"),
    ("traces start <Name> ip_address <IPAddr> [<Duration>] [<Formatter>]",
     "Traces for a client IP in cluster (Formatter=text|json)"),
    ("traces stop <Name>", "Stop trace in cluster"),
    ("traces delete <Name>", "Delete trace in cluster"),
    ("banned list", "List banned clients, usernames and addresses"),
    ("banned add <As> <Who> [Reason]", "Ban: As is clientid, username or peerhost"),
    ("banned del <As> <Who>", "Remove a ban"),
    ("data import <File>", "Import data from the specified tar archive file"),
    ("data export", "Export data"),
    ("cluster join <Node>", "Join the cluster"),
    ("cluster leave", "Leave the cluster"),
    ("cluster force-leave <Node>", "Force the node leave from cluster"),
    ("cluster status [--json]", "Cluster status"),
    ("admins add <Username> <Password> <Description>", "Add dashboard user"),
    ("admins passwd <Username> <Password>", "Reset dashboard user password"),
    ("admins del <Username>", "Delete dashboard user"),
]
COMMANDS = tuple(dict.fromkeys(cmd.split()[0] for cmd, _ in USAGE_PAIRS))


def usage(pairs) -> str:
    """emqx_ctl:usage/1 layout: command padded to 48 columns, then '# description'."""
    return "".join(f"{cmd:<48} # {desc}\n" for cmd, desc in pairs)


def usage_for(command: str) -> str:
    return usage([p for p in USAGE_PAIRS if p[0].split()[0] == command])
