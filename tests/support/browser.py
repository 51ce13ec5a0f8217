"""Helpers of the dashboard's browser tests (tests/dashboard): Debian's Chromium driven by
Playwright (no browser download), logging in, and the accessible-name check."""
from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


def login(page, api, to="#/dashboard/overview", user="admin", password="public"):
    page.goto(f"{api.base}/{to}")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Login").click()
    if password == "public":
        page.get_by_role("button", name="Skip").click()


# every visible control has a name: its aria-label, label, text or title (a placeholder is
# not a name: it is gone once the field is filled)
ACCESSIBLE_NAME_CHECK = """() => {
  const unnamed = [];
  for (const el of document.querySelectorAll('button, input, select, textarea, a[href]')) {
    if (el.type === 'hidden' || !el.checkVisibility()) continue;
    const label = el.getAttribute('aria-label')
      || (el.labels && el.labels.length && el.labels[0].innerText.trim())
      || el.innerText.trim() || el.getAttribute('title');
    if (!label) unnamed.push(el.outerHTML.slice(0, 120));
  }
  return unnamed;
}"""
