"""The Python client resumes across disconnects: every event once, in order."""

from __future__ import annotations

import asyncio
from typing import Any

from ocos_hub.client import HubClient
from ocos_hub.protocol import Close
from tests.conftest import RunningHub, StartHub
from tests.ticks import tick


async def collect(client: HubClient, count: int, out: list[dict[str, Any]]) -> None:
    async for event in client.events():
        out.append(event)
        if len(out) == count:
            return


async def test_client_resumes_after_server_side_disconnects(running: RunningHub) -> None:
    received: list[dict[str, Any]] = []
    async with HubClient(running.url, min_backoff=0.01) as client:
        client.subscribe("ticks")
        reader = asyncio.create_task(collect(client, 300, received))
        while not running.hub.sessions:
            await asyncio.sleep(0.01)
        while not any(s.subscriptions for s in running.hub.sessions):
            await asyncio.sleep(0.01)
        for start in range(0, 300, 30):
            await running.publish(*(tick(n) for n in range(start, start + 30)))
            for session in list(running.hub.sessions):
                session.close_soon(Close.INTERNAL, "test: connection dropped")
            await asyncio.sleep(0.02)
        await asyncio.wait_for(reader, 10)
        assert client.reconnects >= 5
    assert [e["offset"] for e in received] == list(range(1, 301))
    assert [e["data"]["n"] for e in received] == list(range(300))


async def test_client_reports_a_gap_when_history_was_trimmed(start_hub: StartHub) -> None:
    running = await start_hub({"history": {"max_events": 5}})
    gaps: list[str] = []
    received: list[dict[str, Any]] = []
    async with HubClient(running.url, min_backoff=0.01,
                         on_gap=lambda topic, ack: gaps.append(topic)) as client:
        client.subscribe("ticks")
        reader = asyncio.create_task(collect(client, 6, received))
        while not any(s.subscriptions for s in running.hub.sessions):
            await asyncio.sleep(0.01)
        await running.publish(tick(0))
        while not received:
            await asyncio.sleep(0.01)
        for session in list(running.hub.sessions):
            await session.close(Close.INTERNAL, "test: connection dropped")
        await running.publish(*(tick(n) for n in range(1, 21)))
        await asyncio.wait_for(reader, 10)
    assert gaps == ["ticks"]
    assert [e["offset"] for e in received] == [1, *range(17, 22)]
