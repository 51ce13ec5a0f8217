"""`emqpy ctl admins add|passwd|del`, like `emqx ctl admins`: manage dashboard users. With the
broker running, the command runs in it (`POST /emqpy/ctl`), so that a cluster replicates the
change as EMQX's replicated admin table does; with the broker stopped, directly in the data
dir's database (e.g. a lost password; that change then stays on this node)."""
from __future__ import annotations

import sys
from pathlib import Path

from emqpy.dashboard import admin
from emqpy.store import Store

USAGE = """\
admins add <Username> <Password> <Description>  # Add dashboard user
admins passwd <Username> <Password>             # Reset dashboard user password
admins del <Username>                           # Delete dashboard user
"""


def valid(argv: list[str]) -> bool:
    cmd, args = (argv[0], argv[1:]) if argv else ("", [])
    return (cmd == "add" and len(args) in (2, 3)) or (cmd == "passwd" and len(args) == 2) or \
        (cmd == "del" and len(args) == 1)


def run(store: Store, argv: list[str]) -> None:
    """Run a `valid` command on `store`; AdminError when it is refused."""
    cmd, args = argv[0], argv[1:]
    if cmd == "add":
        admin.add_user(store, args[0], args[1], args[2] if len(args) > 2 else "")
    elif cmd == "passwd":
        admin.set_password(store, args[0], args[1])
    else:
        admin.delete_user(store, args[0])


def admins_main(argv: list[str], data_dir: Path | str) -> int:
    """``argv`` is what follows ``admins``, run on the database of a stopped broker; returns
    the process exit status."""
    out, err = sys.stdout, sys.stderr
    if not valid(argv):
        err.write(USAGE)
        return 2
    store = Store.open(Path(data_dir))
    try:
        store.migrate("dashboard")
        run(store, argv)
    except admin.AdminError as e:
        err.write(f"Error: {e.message}\n")
        return 1
    finally:
        store.close()
    out.write("ok\n")
    return 0
