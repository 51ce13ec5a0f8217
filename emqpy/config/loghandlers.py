"""EMQX's ``log`` root applied to Python's logging: the console handler (standard output) and
each enabled ``log.file.<name>`` handler (a size-rotated file), with their levels and text or
JSON formatters, on the root logger. ``apply(log_config)`` replaces the handlers it
installed before (and only those), so a changed ``log`` root takes effect at once.

Logging is process-wide: only the process's owner applies it (``emqpy start``; an embedding
program that wants it calls ``apply`` itself), so a broker embedded in a test or an application
leaves that program's logging alone.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

# EMQX level -> the lowest Python level a handler at that level lets through (Python has no
# notice, alert or emergency: notice sits between info and warning, the last two are critical)
LEVELS = {"all": logging.NOTSET, "debug": logging.DEBUG, "info": logging.INFO, "notice": 25,
          "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
          "alert": logging.CRITICAL, "emergency": logging.CRITICAL}
_MARK = "_emqpy_log_handler"  # set on the handlers this module installed
_lock = threading.Lock()
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")


def log_dir() -> str:
    """``${EMQX_LOG_DIR}``: the environment's, else ``log`` under the working directory."""
    return os.environ.get("EMQX_LOG_DIR") or "log"


def file_path(handler) -> Path:
    """A file handler's path with ``${EMQX_LOG_DIR}`` resolved; relative paths are relative
    to the working directory, as EMQX's are to its root."""
    return Path(str(handler.path).replace("${EMQX_LOG_DIR}", log_dir())).absolute()


def _tz(time_offset: str):
    if time_offset == "utc":
        return timezone.utc
    m = _OFFSET.match(time_offset or "")
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-delta if m.group(1) == "-" else delta)
    return None  # system: the local offset at each instant


class EmqxFormatter(logging.Formatter):
    """EMQX's log line: text ``<time> [<level>] <logger>: <message>`` or a JSON object with
    ``time``, ``level``, ``msg`` and ``logger``. ``timestamp_format`` auto is RFC 3339 for
    text and epoch microseconds for JSON, as EMQX."""

    def __init__(self, formatter: str = "text", timestamp_format: str = "auto",
                 time_offset: str = "system"):
        super().__init__()
        self.json = formatter == "json"
        fmt = timestamp_format
        self.epoch = fmt == "epoch" or (fmt == "auto" and self.json)
        self.tz = _tz(time_offset)

    def _time(self, record):
        if self.epoch:
            return int(record.created * 1_000_000)
        dt = datetime.fromtimestamp(record.created, self.tz)
        if self.tz is None:
            dt = dt.astimezone()
        return dt.isoformat(timespec="microseconds")

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        level = record.levelname.lower()
        if self.json:
            out = {"time": self._time(record), "level": level, "msg": msg,
                   "logger": record.name}
            if record.exc_text:
                out["exception"] = record.exc_text
            return json.dumps(out, ensure_ascii=False, default=str)
        line = f"{self._time(record)} [{level}] {record.name}: {msg}"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def _console(conf) -> logging.Handler:
    h = logging.StreamHandler(sys.stdout)
    h.setLevel(LEVELS[conf.level])
    h.setFormatter(EmqxFormatter(conf.formatter, conf.timestamp_format, conf.time_offset))
    return h


def _file(conf) -> logging.Handler:
    path = file_path(conf)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = conf.rotation_size
    h = logging.handlers.RotatingFileHandler(
        path, maxBytes=0 if size is None else int(size),
        backupCount=conf.rotation_count, encoding="utf-8", delay=True)
    h.setLevel(LEVELS[conf.level])
    h.setFormatter(EmqxFormatter(conf.formatter, conf.timestamp_format, conf.time_offset))
    return h


def apply(log_config, logger: logging.Logger | None = None) -> list[str]:
    """Install the handlers ``log_config`` (the ``log`` root) enables on ``logger`` (default:
    the root logger), replacing those installed before; its level becomes the lowest enabled
    handler's. Returns the names of the handlers now installed (``console``, ``file.<name>``).
    A file that cannot be opened raises OSError and changes nothing."""
    target = logger if logger is not None else logging.getLogger()
    new: list[tuple[str, logging.Handler]] = []
    try:
        if log_config.console.enable:
            new.append(("console", _console(log_config.console)))
        for name, conf in log_config.file.items():
            if conf.enable:
                new.append((f"file.{name}", _file(conf)))
    except OSError:
        for _, h in new:
            h.close()
        raise
    with _lock:
        for h in [h for h in target.handlers if getattr(h, _MARK, None)]:
            target.removeHandler(h)
            h.close()
        for name, h in new:
            setattr(h, _MARK, name)
            target.addHandler(h)
        levels = [h.level for _, h in new]
        target.setLevel(min(levels) if levels else logging.WARNING)
    return [name for name, _ in new]


def remove(logger: logging.Logger | None = None) -> None:
    """Take away the handlers ``apply`` installed."""
    target = logger if logger is not None else logging.getLogger()
    with _lock:
        for h in [h for h in target.handlers if getattr(h, _MARK, None)]:
            target.removeHandler(h)
            h.close()
