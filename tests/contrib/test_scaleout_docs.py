"""The producer snippets of docs/scale-out.md run as printed and reach subscribers."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import StartHub
from tests.contrib.scaleout import NATS_URL, REDIS_URL, unique
from tests.contrib.test_nats import delete_streams

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"


def snippet(name: str) -> str:
    found = re.search(rf"<!-- snippet: {name} -->\n```python\n(.*?)```", DOC.read_text(),
                      re.DOTALL)
    assert found, f"no snippet {name!r} in {DOC}"
    return found.group(1)


async def run(code: str) -> str:
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code],
                                   capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = unique("docs")
    yield name
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{name}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_the_redis_producer_snippet_publishes_a_block(
    prefix: str, start_hub: StartHub,
) -> None:
    section = {"redis": {"prefix": prefix, "block_ms": 200}}
    nodes = [await start_hub({"plugins": section}, enabled=("blocks", "redis"))
             for _ in range(2)]
    client = await nodes[1].connect()
    await client.request("subscribe", topic="blocks")
    code = snippet("redis-producer").replace('"ocos:ingest', f'"{prefix}:ingest')
    assert "queued as" in await run(code)
    (event,) = await client.events(1)
    assert (event["offset"], event["event"], event["data"]["height"]) == (1, "block.new", 1024)
    assert "queued as" in await run(code)  # the same key again: published once
    await client.nothing()


async def test_the_nats_producer_snippet_publishes_a_block(start_hub: StartHub) -> None:
    name = unique("docs")
    try:
        section = {"nats": {"stream": name, "prefix": name, "heartbeat": 0.5}}
        nodes = [await start_hub({"plugins": section}, enabled=("blocks", "nats"))
                 for _ in range(2)]
        client = await nodes[0].connect()
        await client.request("subscribe", topic="blocks")
        code = snippet("nats-producer").replace('"ocos.ingest.', f'"{name}.ingest.')
        assert "queued as" in await run(code)
        (event,) = await client.events(1)
        assert (event["offset"], event["event"], event["data"]["height"]) == (
            1, "block.new", 1024)
        assert "queued as" in await run(code)
        await client.nothing()
    finally:
        await delete_streams(NATS_URL, name)
