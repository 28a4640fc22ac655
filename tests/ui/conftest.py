"""A real server with the dashboard, and a real headless Chromium driven by Playwright.

One server (SQLite, auth off) is shared by the session's UI tests: each module seeds its
own data under names no other module uses. Screenshots go to ``build/ui-screenshots``
(or ``MLOPS_UI_SCREENSHOTS``); CI keeps them as artifacts and the README shows some.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mlops
from live_server import LiveServer
from mlops.serving import create_serving_app

CHROMIUM = os.environ.get("MLOPS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("MLOPS_UI_SCREENSHOTS") or "build/ui-screenshots")


def unique(prefix: str) -> str:
    """A name no other test of the session uses (the server is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def ui_ml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The connection behind the shared dashboard server (seed data through it)."""
    folder: Path = tmp_path_factory.mktemp("ui")
    connection = mlops.connect(
        f"sqlite:///{folder / 'mlops.db'}",
        artifacts=str(folder / "artifacts"),
        home=str(folder / "home"),
    )
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="session")
def ui_server(ui_ml: Any) -> Iterator[LiveServer]:
    """``mlops server``'s app (serving, API, dashboard at /ui) on an ephemeral port."""
    live = LiveServer(create_serving_app(ui_ml, poll_interval=0.5), ready_path="/ui/").start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright (no downloaded browser).

    Per module, not per session: Playwright's sync API keeps an event loop running in
    this thread while it is started, and tests elsewhere call ``asyncio.run``."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) "
            "or point MLOPS_CHROMIUM at one"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser_context(browser: Any) -> Iterator[Any]:
    """One context per module, so its HTTP cache keeps plotly.js parsed (a fresh context
    pays seconds for its 4.5 MB on the first chart); cookies are cleared per test."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A new page, signed in nowhere (no cookies); JavaScript errors fail the test."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(tab: Any, name: str) -> Path:
    """Save a full-page screenshot as ``name``.png among the test artifacts."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def wait_for_charts(tab: Any, count: int = 1) -> None:
    """Wait until at least ``count`` charts were drawn by plotly.js (an SVG inside)."""
    tab.wait_for_function(
        "n => document.querySelectorAll('.chart[data-drawn=\"1\"] svg.main-svg').length >= n",
        arg=count,
    )
