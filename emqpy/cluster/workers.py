"""One broker process per core: ``node.process_workers = N`` (or ``"auto"``, one per core) makes
`emqpy start` run N-1 sibling processes next to itself, each a clustered node, all on the same
MQTT ports (SO_REUSEPORT: the kernel spreads new connections over the processes, so clients
change nothing). A Python process uses one core; this is how one machine's cores all work.

- Names: the main node's name with ``-w<k>`` after its name part (``emqx@h`` -> ``emqx-w1@h``).
- Data: each sibling's own data dir, ``<data_dir>/workers/<name part>``, which gets a copy of
  the main's ``configs/cluster.hocon`` (runtime changes) each time it starts; its log files
  under ``${EMQX_LOG_DIR}/<name part>``.
- NATS: one server for the whole machine, the main node's (embedded, or the configured
  ``cluster.nats.servers``); the siblings connect to it as clients. A forwarded message then
  crosses one server instead of two (node -> server -> route -> server -> node), and the
  machine runs one nats-server instead of N, which compete with the brokers for the cores.
- HTTP API (18083): the main process only; it answers for the cluster as for any cluster.
- Supervision: a sibling that exits is started again (after 1 s, doubling up to 30 s while it
  keeps dying young); stopping the main stops the siblings first. A sibling dies with the
  main even when the main is killed (-9): Linux's parent-death signal, and a parent watch.
"""
from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("emqpy.cluster")

SIBLING_ENV = "EMQPY_WORKER_OF"  # set in a sibling's environment: the main process's pid
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STOP_TIMEOUT = 10.0

try:  # resolved now: the child side of a fork must not load libraries
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
except (OSError, AttributeError):
    _prctl = None
PR_SET_PDEATHSIG = 1


def count(config) -> int:
    """How many broker processes `emqpy start` runs (node.process_workers resolved)."""
    n = config.node.process_workers
    if n == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    return int(n)


def is_sibling() -> bool:
    return SIBLING_ENV in os.environ


def sibling_name(node_name: str, k: int) -> str:
    part, _, host = node_name.partition("@")
    return f"{part}-w{k}@{host}"


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies (Linux; elsewhere the
    parent watch covers it). Safe between fork and exec (`preexec_fn`)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def watch_parent(on_parent_gone) -> asyncio.Task | None:
    """In a sibling: call `on_parent_gone()` once the main process is gone (checked now, for a
    main that died before the death signal was armed, then every second)."""
    main_pid = os.environ.get(SIBLING_ENV)
    if not main_pid:
        return None
    die_with_parent()

    async def watch():
        while os.getppid() == int(main_pid):
            await asyncio.sleep(1.0)
        log.warning("cluster: the main emqpy process (%s) is gone; stopping", main_pid)
        on_parent_gone()
    return asyncio.get_running_loop().create_task(watch())


class Siblings:
    """The main process's N-1 sibling brokers: started, restarted when they die, stopped."""

    def __init__(self, broker, n: int, conf_file: str | None = None):
        self.broker = broker
        self.n = n
        self.conf_file = conf_file
        self.names = [sibling_name(broker.node_name, k) for k in range(1, n)]
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.restarts: dict[str, int] = {name: 0 for name in self.names}
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    def data_dir(self, name: str) -> Path:
        return Path(self.broker.data_dir).absolute() / "workers" / name.partition("@")[0]

    def environment(self, name: str) -> dict[str, str]:
        from emqpy.config.loghandlers import log_dir
        config = self.broker.config
        env = dict(os.environ)
        env.update({
            SIBLING_ENV: str(os.getpid()),
            "EMQX_NODE__NAME": name,
            "EMQX_NODE__PROCESS_WORKERS": str(self.n),
            "EMQX_CLUSTER__NAME": json.dumps(config.cluster.name),
            "EMQX_CLUSTER__NATS__SERVERS": json.dumps(list(self.broker.cluster.servers)),
            "EMQX_DASHBOARD__LISTENERS__HTTP__BIND": "0",
            "EMQX_DASHBOARD__LISTENERS__HTTPS__BIND": "0",
            "EMQX_LOG_DIR": str(Path(log_dir()).absolute() / name.partition("@")[0]),
        })
        return env

    def command(self, name: str) -> list[str]:
        cmd = [sys.executable, "-m", "emqpy", "start", "--data-dir", str(self.data_dir(name))]
        if self.conf_file:
            cmd += ["--config", str(Path(self.conf_file).absolute())]
        return cmd

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name in self.names:
            self._tasks.append(loop.create_task(self._supervise(name)))

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items() if p.returncode is None}

    async def _spawn(self, name: str) -> asyncio.subprocess.Process:
        data = self.data_dir(name)
        runtime = Path(self.broker.data_dir) / "configs" / "cluster.hocon"
        (data / "configs").mkdir(parents=True, exist_ok=True)
        if runtime.is_file():
            shutil.copyfile(runtime, data / "configs" / "cluster.hocon")
        return await asyncio.create_subprocess_exec(
            *self.command(name), env=self.environment(name), stdin=asyncio.subprocess.DEVNULL)

    async def _supervise(self, name: str) -> None:
        delay = RESTART_DELAY
        while not self._stopping:
            started = time.monotonic()
            try:
                proc = self.procs[name] = await self._spawn(name)
            except OSError as e:
                log.error("cluster: cannot start worker %s: %s", name, e)
            else:
                log.info("cluster: worker %s started (pid %d)", name, proc.pid)
                code = await proc.wait()
                if self._stopping:
                    return
                log.warning("cluster: worker %s (pid %d) exited with %s; restarting",
                            name, proc.pid, code)
            if time.monotonic() - started > 60:
                delay = RESTART_DELAY
            await asyncio.sleep(delay)
            self.restarts[name] += 1
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        procs = [p for p in self.procs.values() if p.returncode is None]
        for p in procs:
            p.terminate()
        if procs:
            try:
                await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                for p in procs:
                    if p.returncode is None:
                        p.kill()
                await asyncio.gather(*(p.wait() for p in procs))
        self.procs.clear()
