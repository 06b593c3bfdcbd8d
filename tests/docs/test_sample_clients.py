"""The sample clients in examples/clients run against a real hub and resume without loss.

Each sample subscribes with a filter and receives events; the hub then drops the
connection (as a restarting node would) and publishes while the sample is away; the sample
reconnects, resumes with `since`, and in the end has shown exactly the matching events,
in order, none lost and none twice.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Page

from ocos_hub.protocol import Close
from tests.browser import ServeStatic
from tests.conftest import RunningHub, StartHub
from tests.docs.helpers import ROOT

SAMPLES = ROOT / "examples" / "clients"
FILTER = {"owner": ["alice"]}
WAIT = 60.0  # seconds before a wait is declared hung; never a condition of the test


def batch(first: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Four events, of which the filter and `events: ["tick"]` keep two."""
    return [("ticks", "tick", {"n": first, "owner": "alice"}),
            ("ticks", "tick", {"n": first + 1, "owner": "bob"}),
            ("ticks", "tock", {"n": first + 2}),
            ("ticks", "tick", {"n": first + 3, "owner": "alice"})]


def kept(offsets: list[int], events: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    return [offset for offset, (_, kind, data) in zip(offsets, events, strict=True)
            if kind == "tick" and data.get("owner") == "alice"]


class Sample:
    """What the scenario needs from a running sample: its acks and events so far."""

    acks: Callable[[int], Awaitable[list[dict[str, Any]]]]
    events: Callable[[int], Awaitable[list[dict[str, Any]]]]


async def resume_scenario(running: RunningHub, sample: Sample) -> None:
    [first] = await sample.acks(1)
    assert first["offset"] == 0 and first.get("recovered") is None

    before = batch(1)
    expected = kept(await running.publish(*before), before)
    assert [e["offset"] for e in await sample.events(len(expected))] == expected

    [session] = running.hub.sessions  # the sample's connection; the hub drops it
    session.close_soon(Close.SHUTDOWN, "node restarting")
    away = batch(11)  # published while the sample is disconnected
    expected += kept(await running.publish(*away), away)

    acks = await sample.acks(2)
    assert acks[1]["recovered"] is True
    after = batch(21)  # live again
    expected += kept(await running.publish(*after), after)

    shown = await sample.events(len(expected))
    assert [e["offset"] for e in shown] == expected  # nothing lost, nothing twice, in order
    assert all(e["event"] == "tick" and e["data"]["owner"] == "alice" for e in shown)
    assert [e["data"]["n"] for e in shown] == [1, 4, 11, 14, 21, 24]


def ws_url(running: RunningHub) -> str:
    return running.url.replace("http://", "ws://", 1)


class ProcessSample(Sample):
    """A sample run as a process printing `ack` and `event` frames as JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.frames: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.changed = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._read_stdout()),
                       asyncio.ensure_future(self._read_stderr())]

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.frames.append(json.loads(line))
            self.changed.set()
        self.changed.set()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.stderr.append(line.decode())

    async def _wait(self, kind: str, count: int) -> list[dict[str, Any]]:
        while True:
            found = [frame for frame in self.frames if frame["type"] == kind]
            if len(found) >= count:
                return found[:count]
            if self.proc.returncode is not None or self._tasks[0].done():
                pytest.fail(f"the sample exited ({self.proc.returncode}):\n"
                            + "".join(self.stderr))
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), WAIT)

    async def acks(self, count: int) -> list[dict[str, Any]]:
        return await self._wait("ack", count)

    async def events(self, count: int) -> list[dict[str, Any]]:
        return await self._wait("event", count)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        await self.proc.wait()
        for task in self._tasks:
            await task


async def run_process(*argv: str) -> AsyncIterator[ProcessSample]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    sample = ProcessSample(proc)
    try:
        yield sample
    finally:
        await sample.stop()


async def test_python_sample_resumes(start_hub: StartHub) -> None:
    running = await start_hub()
    runner = run_process(sys.executable, str(SAMPLES / "python_client.py"), ws_url(running),
                         "ticks", "--filter", json.dumps(FILTER), "--events", "tick")
    async for sample in runner:
        await resume_scenario(running, sample)


@pytest.fixture(scope="module")
def node_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """node_client.mjs next to its `ws` dependency, installed from the committed lock file
    (into a temporary copy, so that the source tree stays clean)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the Node sample needs node and npm (Node 18 or later)"
    target = tmp_path_factory.mktemp("node_sample")
    for name in ("package.json", "package-lock.json", "node_client.mjs"):
        shutil.copy(SAMPLES / name, target / name)
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                          cwd=target, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return target / "node_client.mjs"


async def test_node_sample_resumes(start_hub: StartHub, node_sample: Path) -> None:
    running = await start_hub()
    node = shutil.which("node")
    assert node is not None
    runner = run_process(node, str(node_sample), ws_url(running), "ticks",
                         "--filter", json.dumps(FILTER), "--events", "tick")
    async for sample in runner:
        await resume_scenario(running, sample)


class PageSample(Sample):
    """browser.html in Chromium: acks in the connection log, events in the list."""

    ACKS = "[...document.querySelectorAll('#log li[data-kind=ack]')]"
    EVENTS = "[...document.querySelectorAll('#events li')]"

    def __init__(self, page: Page) -> None:
        self.page = page

    async def acks(self, count: int) -> list[dict[str, Any]]:
        await self.page.wait_for_function(f"{self.ACKS}.length >= {count}",
                                          timeout=WAIT * 1000)
        rows = await self.page.evaluate(
            f"{self.ACKS}.map(li => [Number(li.dataset.offset), li.dataset.recovered])")
        return [{"offset": offset, "recovered": {"true": True, "false": False}.get(flag)}
                for offset, flag in rows[:count]]

    async def events(self, count: int) -> list[dict[str, Any]]:
        await self.page.wait_for_function(f"{self.EVENTS}.length >= {count}",
                                          timeout=WAIT * 1000)
        rows = await self.page.evaluate(
            f"{self.EVENTS}.map(li => [Number(li.dataset.offset), li.dataset.event, "
            "li.textContent])")
        return [{"offset": offset, "event": kind, "data": json.loads(text.split(" ", 1)[1])}
                for offset, kind, text in rows[:count]]


async def test_browser_sample_resumes(start_hub: StartHub, page: Page,
                                      page_console: list[str],
                                      serve_static: ServeStatic) -> None:
    running = await start_hub()
    base = await serve_static(SAMPLES)
    query = urlencode({"hub": ws_url(running), "topic": "ticks", "filter": json.dumps(FILTER),
                       "events": "tick"})
    await page.goto(f"{base}browser.html?{query}")
    await resume_scenario(running, PageSample(page))
    closed = await page.evaluate("[...document.querySelectorAll('#log li[data-kind=closed]')]"
                                 ".map(li => li.dataset.code)")
    assert closed == ["1001"]
    assert not [line for line in page_console if line.startswith(("error", "pageerror"))]
