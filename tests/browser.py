"""Headless Chromium for tests that drive a web page (the browser sample client, dashboards).

Debian's `chromium` package, driven by Playwright for Python through `executable_path`:
nothing is downloaded at run time (`.ci/run` installs the package when it is missing).
The fixtures are registered for every test in tests/conftest.py:

- `browser`: a headless Chromium, closed after the test;
- `page`: a fresh page in its own context; `page_console` collects its console lines and
  uncaught errors (`"error: ..."`, `"pageerror: ..."`) for assertions and failure output;
- `serve_static`: `await serve_static(directory)` serves a directory over HTTP on a real
  socket and returns its base URL (a page from file:// has an opaque origin).

Each test gets its own browser because Playwright's objects belong to the event loop that
made them, and pytest-asyncio gives each test a fresh loop.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

CHROMIUM = Path(os.environ.get("OCOS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)

ServeStatic = Callable[[Path], Awaitable[str]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium "
                    "(apt-get install -y chromium chromium-driver), as .ci/run does")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                    args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture
def page_console(page: Page) -> list[str]:
    lines: list[str] = []

    def console(message: ConsoleMessage) -> None:
        lines.append(f"{message.type}: {message.text}")

    def error(exc: Any) -> None:
        lines.append(f"pageerror: {exc}")

    page.on("console", console)
    page.on("pageerror", error)
    return lines


@pytest.fixture
async def serve_static(aiohttp_server: Any) -> ServeStatic:
    async def serve(directory: Path) -> str:
        app = web.Application()
        app.router.add_static("/", directory)
        server = await aiohttp_server(app)
        return str(server.make_url("/"))

    return serve
