"""Fixtures of the dashboard's browser tests: one Chromium per module, a fresh page per test
that fails the test on any console error and leaves a screenshot of where it ended (in
$EMQPY_ARTIFACTS/dashboard, else pytest's temporary directory), and an HTTP sink."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from support.browser import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    root = os.environ.get("EMQPY_ARTIFACTS")
    folder = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def sink():
    """A real HTTP server in its own process (tests/support/http_sink.py)."""
    from support.servers import HttpSink
    server = HttpSink()
    yield server
    server.stop()


@pytest.fixture
def page(browser, screenshots, request):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    # a component that fails to render is only a console error (Vue catches it); a refused
    # API call is the browser's "Failed to load resource" line, which tests may provoke
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error"
          and "Failed to load resource" not in m.text else None)
    yield pg
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        pg.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    except Exception as e:  # a page that crashed: the test's own failure says more
        print(f"no screenshot of {name}: {e}")
    ctx.close()
    assert pg.errors == []
