"""`jq(Program, JSON[, TimeoutMs])`: run a jq program (the real jq, through PyPI's `jq`) and
return the list of its results, as EMQX does. A JSON argument that is a string is taken as
JSON text; any other value is encoded first.

EMQX stops a jq program that runs past its timeout (``rule_engine.jq_function_default_timeout``,
10 s unless configured: see `set_default_timeout`). jq cannot be interrupted inside a Python
process, so programs run in one worker process that is killed and started again when a program
overruns. A call waits for its result (the rule is evaluated synchronously).

Run as a script, this module is that worker: it reads requests (4-byte length, JSON
``[program, input]``) from stdin and answers each on stdout (``{"ok": [json texts]}`` or
``{"error": message}``).
"""
from __future__ import annotations

import atexit
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time

DEFAULT_TIMEOUT_MS = 10_000
_PROGRAM_CACHE_SIZE = 256


def set_default_timeout(ms: int) -> None:
    """The timeout of jq/2 (EMQX's rule_engine.jq_function_default_timeout)."""
    global DEFAULT_TIMEOUT_MS
    DEFAULT_TIMEOUT_MS = int(ms)


def _write_frame(stream, payload: bytes) -> None:
    stream.write(struct.pack(">I", len(payload)) + payload)
    stream.flush()


class _Worker:
    """The one jq worker process of this process, started on first use."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        import emqpy
        root = os.path.dirname(os.path.dirname(os.path.abspath(emqpy.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        return subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    def _read_exact(self, n: int, deadline: float) -> bytes | None:
        out = bytearray()
        fd = self.proc.stdout.fileno()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(out))
            if not chunk:
                raise RuntimeError("the jq worker exited")
            out += chunk
        return bytes(out)

    def run(self, program: str, data: bytes, timeout_ms: int) -> dict | None:
        """The worker's answer, or None when the program ran out of time."""
        request = json.dumps([program, data.decode("utf-8", "replace")]).encode()
        with self.lock:
            for attempt in (1, 2):
                if self.proc is None or self.proc.poll() is not None:
                    self.proc = self._start()
                deadline = time.monotonic() + timeout_ms / 1000
                try:
                    _write_frame(self.proc.stdin, request)
                    head = self._read_exact(4, deadline)
                    body = None if head is None else \
                        self._read_exact(struct.unpack(">I", head)[0], deadline)
                except (OSError, RuntimeError):
                    self._stop()
                    if attempt == 2:
                        raise
                    continue
                if body is None:
                    self._stop()
                    return None
                return json.loads(body)
        return None


    def close(self) -> None:
        """Let the worker exit (it stops at the end of its input), or kill it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        proc.stdout.close()


_WORKER = _Worker()
atexit.register(_WORKER.close)


def run_jq(program: str, data: bytes, timeout_ms: int) -> list[str] | str | None:
    """The JSON texts of the program's results, an error message (str), or None on timeout."""
    answer = _WORKER.run(program, data, timeout_ms)
    if answer is None:
        return None
    return answer["error"] if "error" in answer else answer["ok"]


def jq(program, data, *timeout):
    # imported here: the worker process runs this file without the rule engine's modules
    from emqpy.rule_engine import funcs_json
    from emqpy.rule_engine.funcs_base import bad_arg, is_int, to_bytes

    args = (program, data, *timeout)
    if len(timeout) > 1:
        raise TypeError(f"jq() takes 2 or 3 arguments but {len(args)} were given")
    if type(program) is not str:
        raise bad_arg("jq", args, "the program must be a string")
    ms = timeout[0] if timeout else DEFAULT_TIMEOUT_MS
    if not is_int(ms) or ms < 0:
        raise bad_arg("jq", args, "the timeout must be a number of milliseconds")
    text = data if type(data) is str else funcs_json.json_encode(data)
    result = run_jq(program, to_bytes(text), ms)
    if result is None:
        raise bad_arg("jq", args, f"jq_exception: timeout after {ms} ms")
    if type(result) is str:
        raise bad_arg("jq", args, f"jq_exception: {result}")
    return [funcs_json.json_decode(r) for r in result]


FUNCTIONS = {"jq": jq}


def _serve() -> None:
    import jq as jqlib
    programs: dict = {}
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return
        program, text = json.loads(stdin.read(struct.unpack(">I", head)[0]))
        try:
            compiled = programs.get(program)
            if compiled is None:
                if len(programs) >= _PROGRAM_CACHE_SIZE:
                    programs.clear()
                compiled = programs[program] = jqlib.compile(program)
            out = compiled.input_text(text).text()
            answer = {"ok": out.split("\n") if out else []}
        except Exception as e:            # jq's compile and run errors are ValueErrors
            answer = {"error": str(e).strip()}
        _write_frame(stdout, json.dumps(answer).encode())


if __name__ == "__main__":
    _serve()
