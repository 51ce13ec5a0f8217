"""`emqpy ctl`: operator commands, printing what `emqx ctl` prints.

    emqpy ctl [--data-dir DIR] [--config emqx.conf] <command> ...

`admins` works on the data dir's database directly (broker running or not). Every other command
talks to the running broker over its HTTP API on 127.0.0.1 and the configured dashboard port,
with an API key whose secret is kept in ``<data_dir>/ctl.secret`` (mode 0600): whoever can read
the data dir is the local operator. The key is created (or replaced, if the file or key went
missing) in the data dir's database the first time it is needed.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

from emqpy.mgmt.ctl_usage import COMMANDS, USAGE_PAIRS, usage, usage_for
from emqpy.secretfile import write_secret

CTL_KEY_NAME = "emqpy_ctl"
SECRET_FILE = "ctl.secret"

class CtlError(Exception):
    pass


class NodeDown(CtlError):
    """The broker cannot be reached (not running, or its HTTP listener is disabled)."""


# -- credentials ----------------------------------------------------------------------------------

def ctl_credentials(data_dir: Path, *, renew: bool = False) -> tuple[str, str]:
    """The (api_key, secret) pair of `emqpy ctl`: the one in the secret file, or a new one
    when the file is missing or ``renew`` (the broker answered 401 to the old one)."""
    path = data_dir / SECRET_FILE
    if not renew and path.is_file():
        key, _, secret = path.read_text().strip().partition(":")
        if key and secret:
            return key, secret
    from emqpy.dashboard import admin
    from emqpy.store import Store

    store = Store.open(data_dir)
    try:
        store.migrate("dashboard")
        row = admin.get_api_key(store, CTL_KEY_NAME)
        try:
            if row is not None:
                try:
                    admin.delete_api_key(store, CTL_KEY_NAME)
                except admin.AdminError:  # another ctl run replaced it just now
                    pass
            view = admin.create_api_key(store, CTL_KEY_NAME, expired_at=None,
                                        desc="emqpy ctl (local operator)", source="ctl")
        except admin.AdminError as e:
            raise CtlError(f"cannot create the ctl API key: {e.message}") from None
        write_secret(path, f"{view['api_key']}:{view['api_secret']}\n")
        return view["api_key"], view["api_secret"]
    finally:
        store.close()


# -- talking to the broker ------------------------------------------------------------------------

class Response:
    def __init__(self, status_code: int, body: bytes):
        self.status_code, self.body = status_code, body

    def json(self):
        return json.loads(self.body.decode("utf-8", "replace"))


class Node:
    """The running broker, reached on its HTTP API (stdlib urllib: no extra dependency)."""

    def __init__(self, config, data_dir: Path):
        self.config = config
        self.data_dir = data_dir
        self.node_name = config.node.name
        bind = config.dashboard.listeners.http.bind
        if bind.disabled:
            raise NodeDown("the dashboard HTTP listener is disabled "
                           "(dashboard.listeners.http.bind = 0); emqpy ctl needs it")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind.host, bind.host)
        if ":" in host:
            host = f"[{host}]"
        self.base = f"http://{host}:{bind.port}/api/v5"
        self._auth: str | None = None

    def _header(self, renew: bool = False) -> str:
        if self._auth is None or renew:
            key, secret = ctl_credentials(self.data_dir, renew=renew)
            self._auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        return self._auth

    def _send(self, method: str, url: str, body: bytes | None, auth: str) -> Response:
        headers = {"Authorization": auth, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return Response(r.status, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read())
        except (urllib.error.URLError, OSError):
            raise NodeDown(f"Node '{self.node_name}' not responding to pings.") from None

    def request(self, method: str, path: str, *, json_body=None, params=None) -> Response:
        url = self.base + path + ("?" + urlencode(params) if params else "")
        body = None if json_body is None else json.dumps(json_body).encode()
        r = self._send(method, url, body, self._header())
        if r.status_code == 401:  # key deleted or replaced: make a new one, once
            r = self._send(method, url, body, self._header(renew=True))
        return r


def _path_missing(r) -> bool:
    """The endpoint does not exist on this broker (as opposed to a 404 about a resource)."""
    if r.status_code not in (404, 405):
        return False
    try:
        return str(r.json().get("message", "")).startswith(("Request path not found",
                                                            "Method "))
    except ValueError:
        return True


def _fail(r) -> CtlError:
    if r.status_code == 401:
        return CtlError("Error: the broker refused the ctl credentials: is --data-dir (or "
                        "node.data_dir) the running broker's data directory?")
    try:
        body = r.json()
        return CtlError(f"Error: {body.get('code')}: {body.get('message')}")
    except ValueError:
        return CtlError(f"Error: HTTP {r.status_code}")


def run_remote(node: Node, argv: list[str]) -> tuple[int, str]:
    r = node.request("POST", "/emqpy/ctl", json_body={"args": argv})
    if r.status_code != 200:
        raise _fail(r)
    body = r.json()
    return int(body["status"]), body["output"]


def _all_pages(node: Node, path: str) -> list | None:
    out, page = [], 1
    while True:
        r = node.request("GET", path, params={"page": page, "limit": 1000})
        if _path_missing(r):
            return None
        if r.status_code != 200:
            raise _fail(r)
        body = r.json()
        out.extend(body.get("data", []))
        if not body.get("meta", {}).get("hasnext"):
            return out
        page += 1


def _unavailable(feature: str) -> tuple[int, str]:
    return 1, f"{feature} is not available on this broker.\n"


def run_retainer(node: Node, args: list[str]) -> tuple[int, str]:
    if args not in (["info"], ["topics"], ["clean"]) and not (
            len(args) == 2 and args[0] == "clean") and not (
            len(args) == 3 and args[0] == "topics" and args[1].isdigit() and args[2].isdigit()):
        return 1, usage_for("retainer")
    r = node.request("GET", "/mqtt/retainer")
    if _path_missing(r):
        return _unavailable("The retainer API")
    if r.status_code != 200:
        raise _fail(r)
    if not r.json().get("enable", True):
        return 0, "Retainer is not enabled\n"
    if args[0] == "clean":
        path = "/mqtt/retainer/messages" if len(args) == 1 else \
            "/mqtt/retainer/message/" + quote(args[1], safe="")
        r = node.request("DELETE", path)
        if _path_missing(r):
            return _unavailable("The retainer API")
        if r.status_code >= 400 and r.status_code != 404:
            raise _fail(r)
        return 0, ""
    msgs = _all_pages(node, "/mqtt/retainer/messages")
    if msgs is None:
        return _unavailable("The retainer API")
    out = f"Number of retained messages: {len(msgs)}\n"
    if args[0] == "topics":
        start, limit = (int(args[1]), int(args[2])) if len(args) == 3 else (1, 1000)
        out += "".join(f"{m.get('topic')}\n" for m in msgs[max(start - 1, 0):
                                                           max(start - 1, 0) + limit])
    return 0, out


def run_banned(node: Node, args: list[str]) -> tuple[int, str]:
    if args == ["list"]:
        rows = _all_pages(node, "/banned")
        if rows is None:
            return _unavailable("The banned API")
        if not rows:
            return 0, "No banned clients.\n"
        return 0, "".join(
            f"Banned(as={b.get('as')}, who={b.get('who')}, by={b.get('by')}, "
            f"reason={b.get('reason')}, at={b.get('at')}, until={b.get('until')})\n"
            for b in rows)
    if len(args) in (3, 4) and args[0] == "add":
        body = {"as": args[1], "who": args[2], "by": "emqpy_ctl"}
        if len(args) == 4:
            body["reason"] = args[3]
        r = node.request("POST", "/banned", json_body=body)
    elif len(args) == 3 and args[0] == "del":
        r = node.request("DELETE", f"/banned/{quote(args[1], safe='')}/"
                                   f"{quote(args[2], safe='')}")
    else:
        return 1, usage_for("banned")
    if _path_missing(r):
        return _unavailable("The banned API")
    if r.status_code >= 400:
        raise _fail(r)
    return 0, "ok\n"


def run_admins(config, data_dir: Path, args: list[str]) -> int:
    """In the running broker (a cluster replicates the change), else in its database."""
    from emqpy.dashboard.cli import USAGE, admins_main, valid
    if not valid(args):
        sys.stderr.write(USAGE)
        return 2
    try:
        status, out = run_remote(Node(config, data_dir), ["admins", *args])
    except NodeDown:
        return admins_main(args, data_dir)
    except CtlError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    (sys.stdout if status == 0 else sys.stderr).write(out)
    return status


# -- entry point ----------------------------------------------------------------------------------

def _load_config(args):
    from emqpy.config import load_config
    return load_config(args.config, env=os.environ, data_dir=args.data_dir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="emqpy ctl", add_help=False)
    parser.add_argument("--data-dir")
    parser.add_argument("--config", "-c")
    parser.add_argument("command", nargs="?")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command in (None, "help", "--help", "-h"):
        sys.stdout.write("Usage: emqpy ctl [--data-dir DIR] [--config FILE] <command>\n\n"
                         + usage(USAGE_PAIRS))
        return 0
    if args.command not in COMMANDS:
        sys.stderr.write(f"Command not found: {args.command}\n\n" + usage(USAGE_PAIRS))
        return 2
    from emqpy.config import ConfigError
    try:
        config = _load_config(args)
    except ConfigError as e:
        sys.stderr.write(f"emqpy ctl: config error: {e}\n")
        return 2
    data_dir = Path(args.data_dir or config.node.data_dir)
    if args.command == "admins":
        return run_admins(config, data_dir, args.rest)
    try:
        node = Node(config, data_dir)
        if args.command == "retainer":
            status, out = run_retainer(node, args.rest)
        elif args.command == "banned":
            status, out = run_banned(node, args.rest)
        else:
            rest = list(args.rest)
            if args.command == "trace" and len(rest) >= 4 and rest[0] == "start":
                rest[3] = os.path.abspath(rest[3])  # (the broker's working dir is not ours)
            if args.command == "data" and len(rest) == 2 and rest[0] == "import" \
                    and os.path.exists(rest[1]):  # a file here: the broker needs its full path
                rest[1] = os.path.abspath(rest[1])
            status, out = run_remote(node, [args.command, *rest])
    except CtlError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    sys.stdout.write(out)
    return status
