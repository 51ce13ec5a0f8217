"""EMQX's `log` root: its two forms of `log.file`, and its handlers applied to Python logging
(emqpy.config.loghandlers) on a logger of the test's own."""
from __future__ import annotations

import json
import logging
import time

import pytest

from emqpy.config import ConfigError, EmqxConfig, update_root
from emqpy.config import loghandlers


def log_root(**changes):
    return update_root(EmqxConfig(), "log", changes).log


@pytest.fixture
def logger():
    lg = logging.getLogger(f"emqpy-test-log-{time.monotonic_ns()}")
    lg.propagate = False
    yield lg
    loghandlers.remove(lg)


def test_file_forms_and_aliases():
    dflt = EmqxConfig().log.file
    assert list(dflt) == ["default"] and dflt["default"].level == "warning"
    assert dflt["default"].enable is False and dflt["default"].rotation_size == 50 * 1024 * 1024
    # one handler's keys are the handler "default"; named handlers sit beside it
    f = log_root(file={"level": "info", "rotation": {"count": 3}, "max_size": "infinity",
                       "audit_x": {"path": "/tmp/x.log", "to": "/tmp/ignored.log"}}).file
    assert set(f) == {"default", "audit_x"}
    assert f["audit_x"].path == "/tmp/x.log"
    c = EmqxConfig().dump("log")
    assert c["file"]["default"]["rotation_size"] == "50MB"
    one = update_root(EmqxConfig(), "log", {"file": {"default": {"rotation_size": "infinity",
                                                                 "rotation_count": 3}}})
    assert one.log.file["default"].rotation_size is None
    assert one.dump("log")["file"]["default"]["rotation_size"] == "infinity"
    with pytest.raises(ConfigError, match="rotation_count"):
        log_root(file={"default": {"rotation_count": 0}})
    with pytest.raises(ConfigError, match="level"):
        log_root(file={"default": {"level": "loud"}})
    with pytest.raises(ConfigError, match="formatter"):
        log_root(console={"formatter": "xml"})


def test_file_handler_levels_and_formatters(logger, tmp_path):
    path = tmp_path / "a" / "emqx.log"
    conf = log_root(console={"enable": False},
                    file={"default": {"enable": True, "level": "info", "path": str(path)}})
    assert loghandlers.apply(conf, logger) == ["file.default"]
    assert logger.level == logging.INFO
    logger.debug("not this")
    logger.info("hello %s", "file")
    logger.warning("and this")
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[0].endswith(f"[info] {logger.name}: hello file")
    assert lines[1].endswith(f"[warning] {logger.name}: and this")
    # a change takes the place of the handlers installed before
    conf = log_root(console={"enable": False},
                    file={"default": {"enable": True, "level": "error", "path": str(path),
                                      "formatter": "json"}})
    loghandlers.apply(conf, logger)
    assert len([h for h in logger.handlers]) == 1
    logger.warning("dropped")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["level"] == "error" and last["msg"] == "failed"
    assert last["logger"] == logger.name and "ValueError: boom" in last["exception"]
    assert abs(last["time"] / 1e6 - time.time()) < 60  # epoch microseconds (auto, json)
    assert "dropped" not in path.read_text()
    loghandlers.apply(log_root(console={"enable": False}), logger)
    assert logger.handlers == []


def test_rotation_and_time_format(logger, tmp_path):
    path = tmp_path / "r.log"
    conf = log_root(console={"enable": False}, file={"default": {
        "enable": True, "path": str(path), "rotation_size": "1KB", "rotation_count": 2,
        "timestamp_format": "rfc3339", "time_offset": "+02:00"}})
    loghandlers.apply(conf, logger)
    for i in range(100):
        logger.warning("line %d %s", i, "x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["r.log", "r.log.1", "r.log.2"]
    assert all(p.stat().st_size <= 1024 for p in tmp_path.iterdir())
    assert "+02:00 [warning]" in path.read_text().splitlines()[-1]


def test_console_handler_and_bad_file(logger, tmp_path, capsys):
    conf = log_root(console={"level": "debug", "formatter": "json"})
    assert loghandlers.apply(conf, logger) == ["console"]
    logger.debug("to stdout")
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["msg"] == "to stdout" and out["level"] == "debug"
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = log_root(file={"default": {"enable": True, "path": str(blocker / "x.log")}})
    with pytest.raises(OSError):
        loghandlers.apply(bad, logger)
    assert len(logger.handlers) == 1  # unchanged: the console handler still runs
