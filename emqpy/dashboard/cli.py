"""`emqpy ctl admins add|passwd|del`, like `emqx ctl admins`: manage dashboard users directly in
the data dir's database (works whether or not the broker is running; e.g. a lost password)."""
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


def admins_main(argv: list[str], data_dir: Path | str) -> int:
    """``argv`` is what follows ``admins``; returns the process exit status."""
    out, err = sys.stdout, sys.stderr
    cmd, args = (argv[0], argv[1:]) if argv else ("", [])
    if cmd not in ("add", "passwd", "del") or \
            (cmd == "add" and len(args) not in (2, 3)) or \
            (cmd == "passwd" and len(args) != 2) or (cmd == "del" and len(args) != 1):
        err.write(USAGE)
        return 2
    store = Store.open(Path(data_dir))
    try:
        store.migrate("dashboard")
        if cmd == "add":
            admin.add_user(store, args[0], args[1], args[2] if len(args) > 2 else "")
        elif cmd == "passwd":
            admin.set_password(store, args[0], args[1])
        else:
            admin.delete_user(store, args[0])
    except admin.AdminError as e:
        err.write(f"Error: {e.message}\n")
        return 1
    finally:
        store.close()
    out.write("ok\n")
    return 0
