"""`emqpy ctl`: operator commands, like `emqx ctl`.

    emqpy ctl [--data-dir DIR] [--config emqx.conf] admins add|passwd|del ...
"""
from __future__ import annotations

import argparse
import os
import sys

USAGE = """\
usage: emqpy ctl [--data-dir DIR] [--config FILE] <command> ...

commands:
  admins add <Username> <Password> [Description]   add a dashboard user
  admins passwd <Username> <Password>              reset a dashboard user's password
  admins del <Username>                            delete a dashboard user
"""


def _data_dir(args) -> str:
    if args.data_dir:
        return args.data_dir
    from emqpy.config import load_config
    return load_config(args.config, env=os.environ).node.data_dir


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="emqpy ctl", add_help=False)
    parser.add_argument("--data-dir")
    parser.add_argument("--config", "-c")
    parser.add_argument("command", nargs="?")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "admins":
        from emqpy.dashboard.cli import admins_main
        return admins_main(args.rest, _data_dir(args))
    sys.stderr.write(USAGE)
    return 0 if args.command in (None, "help") else 2
