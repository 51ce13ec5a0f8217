"""Readings of the host and of this process, the emqpy analogues of what EMQX takes from the
Erlang VM and os_mon: load averages, system memory, CPU utilisation, file descriptor limit, and
this process's resident memory, CPU time and threads. Linux reads /proc; elsewhere the figures
that cannot be read are 0, as EMQX reports when os_mon is unsupported."""
from __future__ import annotations

import math
import os
import resource
import threading
import time


def loads() -> dict[str, float]:
    """load1/5/15 truncated to two decimals (EMQX: floor(avg * 100) / 100)."""
    try:
        l1, l5, l15 = os.getloadavg()
    except OSError:
        l1 = l5 = l15 = 0.0
    return {k: math.floor(v * 100) / 100 for k, v in (("load1", l1), ("load5", l5),
                                                        ("load15", l15))}


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    out[key] = int(parts[0]) * (1024 if parts[-1] == "kB" else 1)
    except OSError:
        pass
    return out


def sys_memory() -> tuple[int, int]:
    """(total, used) bytes of host memory: EMQX's memory_total/memory_used (os_mon memsup),
    used = total - available."""
    info = _meminfo()
    total = info.get("MemTotal", 0)
    avail = info.get("MemAvailable", info.get("MemFree", 0))
    return total, max(0, total - avail)


def max_fds() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def vms_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def process_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def process_start_time() -> float:
    """Epoch seconds this process started (from /proc; falls back to import time)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + int(fields[19]) / ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT


_IMPORTED_AT = time.time()


def runnable_threads() -> int:
    """Threads of this process in state R: the analogue of the VM's run queue."""
    n = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    if f.read().rpartition(")")[2].split()[0] == "R":
                        n += 1
            except OSError:
                continue
    except OSError:
        return 0
    return n


def thread_count() -> int:
    return threading.active_count()


class CpuMeter:
    """Host CPU utilisation (percent busy / idle) between successive readings of /proc/stat, as
    EMQX's cpu_sup util. The first reading covers the time since boot."""

    def __init__(self):
        self._last: tuple[int, int] | None = None
        self._last_t = 0.0
        self._lock = threading.Lock()
        self._value = (0.0, 0.0)

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                parts = f.readline().split()
        except OSError:
            return None
        if not parts or parts[0] != "cpu":
            return None
        vals = [int(x) for x in parts[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        total = sum(vals[:8])  # guest time is already counted in user/nice
        return total, idle

    def util(self) -> tuple[float, float]:
        """(cpu_use, cpu_idle) in percent, two decimals (EMQX floors use and ceils idle)."""
        with self._lock:
            t = time.monotonic()
            if self._last is not None and t - self._last_t < 1.0:
                return self._value  # too short a window to mean anything: keep the last value
            now = self._read()
            if now is None:
                return 0.0, 0.0
            last, self._last, self._last_t = self._last, now, t
            if last is None:
                d_total, d_idle = now
            else:
                d_total, d_idle = now[0] - last[0], now[1] - last[1]
            if d_total <= 0:
                return self._value
            idle = 100.0 * d_idle / d_total
            use = 100.0 - idle
            self._value = (math.floor(use * 100) / 100, math.ceil(idle * 100) / 100)
            return self._value


cpu = CpuMeter()
