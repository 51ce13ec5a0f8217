"""The `emqpy` command: `emqpy start`, `emqpy bench ...`, `emqpy ctl ...`."""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys


def _ctypes_mallopt() -> None:
    """Keep glibc from returning read buffers to the OS on every read (page-fault storms)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024)
    except (OSError, AttributeError):
        pass


async def _run_broker(args) -> int:
    from emqpy.node import Node
    from emqpy.config import ConfigError

    env = dict(os.environ)
    if env.get("EMQPY_LOG_LEVEL"):  # emqpy's older switch, now EMQX's log.console.level
        env.setdefault("EMQX_LOG__CONSOLE__LEVEL", env["EMQPY_LOG_LEVEL"].lower())
    try:
        broker = Node(None, conf_file=args.config, data_dir=args.data_dir, env=env)
    except ConfigError as e:
        print(f"emqpy: config error: {e}", file=sys.stderr)
        return 2
    from emqpy.config import loghandlers
    broker.manage_logging = True  # the log root owns this process's logging
    try:
        loghandlers.apply(broker.config.log)
    except OSError as e:
        print(f"emqpy: cannot open the log file: {e}", file=sys.stderr)
        return 1
    from emqpy.cluster import workers
    try:
        await broker.start()
    except Exception as e:  # e.g. a busy port: one line, no traceback
        print(f"emqpy: cannot start: {e}", file=sys.stderr)
        return 1
    siblings = None  # node.process_workers: this process supervises the other brokers
    if not workers.is_sibling() and workers.count(broker.config) > 1:
        siblings = workers.Siblings(
            broker, workers.count(broker.config), args.config)
        await siblings.start()
    # What start-up built (config, HTTP app, OpenAPI models: ~100k objects) lives as long as the
    # process: keep it out of the garbage collector's scans, which otherwise walk it again in
    # every full collection (measured: a third of the Python cost of a CONNECT in a connect storm).
    # And collect the young generation every 10,000 allocations instead of 700: a broker keeps
    # many long-lived objects per connection, which the default re-walks every few CONNECTs
    # (compare.py conn: ~+6%; a young collection stays well under a millisecond).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:
            pass
    workers.watch_parent(stop.set)  # a sibling stops with its main process
    ports = ", ".join(f"{lid} on {lst.host}:{lst.port}" for lid, lst in broker.listeners.items())
    api = f"; HTTP API on port {broker.api.port}" if broker.api is not None and broker.api.port else ""
    print(f"emqpy {broker.emqpy_version} is running as {broker.node_name}: {ports}{api}", flush=True)
    await stop.wait()
    print("emqpy: stopping", flush=True)
    if siblings is not None:
        await siblings.stop()
    await broker.stop()
    return 0


def cmd_start(args) -> int:
    _ctypes_mallopt()
    try:
        import uvloop
        return uvloop.run(_run_broker(args))
    except ImportError:
        return asyncio.run(_run_broker(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench":
        from emqpy.bench import main as bench_main
        return bench_main(argv[1:])
    if argv and argv[0] == "ctl":
        from emqpy.ctl import main as ctl_main
        return ctl_main(argv[1:])
    parser = argparse.ArgumentParser(prog="emqpy", description="emqpy MQTT broker")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start", help="run the broker in the foreground")
    p.add_argument("--config", "-c", help="EMQX-style HOCON config file (emqx.conf)")
    p.add_argument("--data-dir", help="data directory (default: node.data_dir, ./data)")
    sub.add_parser("bench", help="MQTT load generator (emqpy bench conn|sub|pub --help)")
    sub.add_parser("ctl", help="operator commands (emqpy ctl --help)")
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    if args.command == "start":
        return cmd_start(args)
    if args.command == "version":
        from emqpy import __version__
        print(__version__)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
