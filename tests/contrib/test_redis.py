"""Many hub nodes on one Redis behave as one hub: order, resume, epoch, ingest, outages."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from ocos_hub.app import create_app
from ocos_hub.config import ConfigError, merge, parse_config
from tests.conftest import OPEN, RunningHub, StartHub
from tests.contrib.scaleout import (
    REDIS_URL,
    Follower,
    PrivateRedis,
    close_code,
    offsets,
    ready,
    unique,
    until,
)
from tests.ticks import TicksPlugin, tick


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards (list it before
    `start_hub` so that the nodes stop first)."""
    name = unique("redis")
    yield name
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{name}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def node(start_hub: StartHub, prefix: str, *, url: str = REDIS_URL,
               enabled: tuple[str, ...] = ("ticks", "redis"),
               overrides: dict[str, Any] | None = None, **section: Any) -> RunningHub:
    redis_section = {"url": url, "prefix": prefix, "block_ms": 200, **section}
    return await start_hub(merge({"plugins": {"redis": redis_section}}, overrides or {}),
                           enabled=enabled)


async def pair(start_hub: StartHub, prefix: str, **section: Any) -> tuple[RunningHub, RunningHub]:
    return (await node(start_hub, prefix, **section), await node(start_hub, prefix, **section))


async def test_events_published_on_either_node_reach_both_in_order(
    prefix: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, prefix)
    on_a, on_b = await a.connect(), await b.connect()
    plain = await b.connect()
    for client in (on_a, on_b):
        assert (await client.request("subscribe", topic="ticks"))["offset"] == 0
    await plain.request("subscribe", topic="ticks", filter={"min_n": 100})

    async def produce(running: RunningHub, base: int) -> None:
        for n in range(base, base + 30):
            await running.publish(tick(n))

    await asyncio.gather(produce(a, 100), produce(b, 200))
    for client in (on_a, on_b):
        events = await client.events(60)
        assert [e["offset"] for e in events] == list(range(1, 61))
        from_a = [e["data"]["n"] for e in events if e["data"]["n"] < 200]
        assert from_a == list(range(100, 130))
    assert await offsets(plain, 60) == list(range(1, 61))
    await on_b.nothing()


async def test_batches_from_both_nodes_get_distinct_consecutive_offsets(
    prefix: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, prefix)
    results = await asyncio.gather(*(
        running.publish(*(tick(n) for n in range(5)))
        for running in (a, b, a, b, a, b)))
    assigned = sorted(offset for batch in results for offset in batch)
    assert assigned == list(range(1, 31))
    for batch in results:
        assert batch == list(range(batch[0], batch[0] + 5))  # a batch stays together


async def test_a_client_resumes_on_another_node_with_nothing_lost(
    prefix: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, prefix)
    first = await a.connect()
    ack = await first.request("subscribe", topic="ticks")
    await a.publish(tick(1), tick(2), tick(3))
    assert await offsets(first, 3) == [1, 2, 3]
    await first.ws.close()
    await a.publish(tick(4), tick(5))

    again = await b.connect()
    resumed = await again.request("subscribe", topic="ticks",
                                  since={"offset": 3, "epoch": ack["epoch"]})
    assert resumed["recovered"] is True
    assert (resumed["offset"], resumed["epoch"]) == (5, ack["epoch"])
    assert [e["data"]["n"] for e in await again.events(2)] == [4, 5]
    await a.publish(tick(6))
    assert await offsets(again, 1) == [6]
    await again.nothing()


async def test_every_node_reports_the_same_epoch_and_history(
    prefix: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, prefix)
    await a.publish(*(tick(n) for n in range(1, 8)))
    late = await node(start_hub, prefix)
    positions = {await running.hub.broker.position("ticks") for running in (a, b, late)}
    assert len(positions) == 1
    (position,) = positions
    assert position.offset == 7

    client = await late.connect()
    ack = await client.request("subscribe", topic="ticks", rewind=3)
    assert (ack["offset"], ack["epoch"]) == (7, position.epoch)
    assert await offsets(client, 3) == [5, 6, 7]
    resp = await b.http.get("/api/v1/topics/ticks/events?since=2&limit=3")
    body = await resp.json()
    assert body["epoch"] == position.epoch
    assert [e["offset"] for e in body["events"]] == [3, 4, 5]
    assert (body["first_offset"], body["last_offset"]) == (1, 7)
    page = await a.hub.broker.read_before("ticks", 4, 2)
    assert [e.offset for e in page.events] == [2, 3]


async def test_trimmed_history_is_not_recovered(prefix: str, start_hub: StartHub) -> None:
    a, b = await pair(start_hub, prefix, max_len=10)
    epoch = (await a.hub.broker.position("ticks")).epoch
    await a.publish(*(tick(n) for n in range(1, 501)))
    for running in (a, b):  # both readers are past the trimmed entries (they skip them)
        assert (await running.hub.broker.position("ticks")).offset == 500
    client = await b.connect()
    ack = await client.request("subscribe", topic="ticks", since={"offset": 2, "epoch": epoch})
    assert ack["recovered"] is False and ack["offset"] == 500
    page = await b.hub.broker.read("ticks", 0, 1000)
    assert page.first_offset > 3 and page.events[-1].offset == 500
    assert await offsets(client, len(page.events)) == [e.offset for e in page.events]
    resumed = await (await a.connect()).request(
        "subscribe", topic="ticks", since={"offset": page.first_offset - 1, "epoch": epoch})
    assert resumed["recovered"] is True


async def test_a_producer_publishes_through_the_ingest_stream(
    prefix: str, start_hub: StartHub,
) -> None:
    _, b = await pair(start_hub, prefix)  # either node may be the one ingesting
    client = await b.connect()
    await client.request("subscribe", topic="ticks")
    producer = aioredis.Redis.from_url(REDIS_URL)
    ingest = f"{prefix}:ingest"
    entries: list[dict[str, Any]] = [
        {"topic": "ticks", "event": "tick", "data": json.dumps({"n": 1}), "key": "block-1"},
        {"topic": "ticks", "event": "tick", "data": json.dumps({"n": "one"})},
        {"topic": "nowhere", "event": "tick", "data": "{}"},
        {"topic": "ticks", "event": "tick", "data": json.dumps({"n": 1}), "key": "block-1"},
        {"topic": "ticks", "event": "tock", "data": json.dumps({"n": 2})},
        {"topic": "ticks", "event": "tick", "data": "[1]"},
        {"topic": "ticks", "event": "tick", "data": json.dumps({"n": 3}), "extra": "x"},
        {"topic": "ticks", "event": "tick", "data": json.dumps({"n": 4})},
    ]
    for entry in entries:
        await producer.xadd(ingest, entry)
    events = await client.events(3)
    assert [(e["offset"], e["event"], e["data"]["n"]) for e in events] == [
        (1, "tick", 1), (2, "tock", 2), (3, "tick", 4)]
    await client.nothing()

    async def dead_letters() -> list[Any]:
        found: list[Any] = await producer.xrange(f"{prefix}:ingest:dead")
        return found if len(found) == 4 else []

    dead = await dead_letters() or await until(dead_letters, "four dead letters")
    reasons = [fields[b"error"].decode() for _, fields in dead]
    assert reasons[0].startswith("invalid_event: ticks tick: invalid data at n")
    assert reasons[1] == "unknown_topic: no topic 'nowhere'"
    assert reasons[2] == "invalid_event: data must be a JSON object"
    assert "unknown fields ['extra']" in reasons[3]
    assert json.loads(dead[0][1][b"fields"])["data"] == '{"n": "one"}'
    assert await producer.xlen(ingest) == 0
    await producer.aclose()


async def test_ingest_keeps_order_across_many_entries(prefix: str, start_hub: StartHub) -> None:
    nodes = [await node(start_hub, prefix) for _ in range(3)]
    client = await nodes[1].connect()
    await client.request("subscribe", topic="ticks")
    producer = aioredis.Redis.from_url(REDIS_URL)
    async with producer.pipeline(transaction=False) as pipe:
        for n in range(1, 301):
            pipe.xadd(f"{prefix}:ingest", {"topic": "ticks", "event": "tick",
                                           "data": json.dumps({"n": n})})
        await pipe.execute()
    events = await client.events(300)
    assert [(e["offset"], e["data"]["n"]) for e in events] == [(n, n) for n in range(1, 301)]
    await producer.aclose()


async def test_two_nodes_ingesting_at_once_publish_each_entry_once_in_order(
    prefix: str, start_hub: StartHub,
) -> None:
    """Even when two nodes both think they hold the lease (one stalled past it), the
    cursor check in the publish script lets only one publish each entry."""
    from ocos_redis.broker import RedisBroker
    from ocos_redis.ingest import Ingest

    a, b = await pair(start_hub, prefix, ingest=False)
    client = await a.connect()
    await client.request("subscribe", topic="ticks")
    producer = aioredis.Redis.from_url(REDIS_URL)
    for n in range(1, 201):
        await producer.xadd(f"{prefix}:ingest", {"topic": "ticks", "event": "tick",
                                                 "data": json.dumps({"n": n})})
    ingests = []
    for running in (a, b):
        assert isinstance(running.hub.broker, RedisBroker)
        ingests.append(Ingest(running.hub.broker, running.hub))
    for ingest in ingests:
        ingest.broker.config.read_count = 7  # many small steps, so that they interleave

    async def drain(ingest: Ingest) -> None:
        while await producer.xlen(f"{prefix}:ingest"):
            await ingest.step(None)

    await asyncio.gather(*(drain(ingest) for ingest in ingests))
    assert sum(ingest.published for ingest in ingests) == 200
    events = await client.events(200)
    assert [(e["offset"], e["data"]["n"]) for e in events] == [(n, n) for n in range(1, 201)]
    await client.nothing()
    await producer.aclose()


async def test_a_client_follows_the_other_node_when_its_node_stops(
    prefix: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, prefix)
    switch = asyncio.Event()
    followers = [Follower([a.url, b.url], "ticks", 200, switch) for _ in range(3)]

    async def live() -> bool:
        return all(follower.live for follower in followers)

    await until(live, "three subscribers on node A")
    for n in range(1, 101):
        await b.publish(tick(n))
    await a.http.close()  # node A stops: its sockets close with 1001
    switch.set()
    for n in range(101, 201):
        await b.publish(tick(n))
    for follower in followers:
        await asyncio.wait_for(follower.task, 30)
        assert [e["offset"] for e in follower.got] == list(range(1, 201))
        assert [e["data"]["n"] for e in follower.got] == list(range(1, 201))
        assert follower.client.reconnects >= 1


async def test_a_session_made_on_one_node_works_on_the_other(
    prefix: str, start_hub: StartHub,
) -> None:
    from tests.plugins.auth.helpers import Wallet, challenge, sign_in, verify

    auth = {"access": {"anonymous": []},
            "plugins": {"wallet": {"scopes": ["subscribe:ticks"]},
                        "sessions": {"revocation_check": 0.05}}}
    enabled = ("ticks", "redis", "sessions", "wallet")
    a = await node(start_hub, prefix, enabled=enabled, overrides=auth)
    b = await node(start_hub, prefix, enabled=enabled, overrides=auth)
    wallet = Wallet()
    login = await sign_in(a, wallet)
    bearer = {"Authorization": f"Bearer {login['token']}"}
    on_b = await b.connect(headers=bearer)
    assert on_b.welcome["principal"]["id"] == wallet.address
    assert (await on_b.request("subscribe", topic="ticks"))["type"] == "ack"

    # a nonce used on A is refused on B
    message = (await challenge(a, wallet.address))["message"]
    signed = {"address": wallet.address, "message": message, "signature": wallet.sign(message)}
    assert (await verify(a, signed)).status == 200
    replay = await verify(b, signed)
    assert replay.status == 401
    assert (await replay.json())["code"] == "invalid_credentials"
    # a challenge issued on A is answered on B, once
    message = (await challenge(a, wallet.address))["message"]
    signed = {"address": wallet.address, "message": message, "signature": wallet.sign(message)}
    assert (await verify(b, signed)).status == 200
    assert (await verify(a, signed)).status == 401

    # logging out on A closes the socket on B (4003) and the token is refused on B
    resp = await a.http.post("/auth/logout", headers=bearer)
    assert resp.status == 200
    assert await close_code(on_b) == 4003
    refused = await b.http.get("/api/v1/topics/ticks/events", headers=bearer)
    assert refused.status == 401


async def test_rate_limits_count_across_nodes(prefix: str, start_hub: StartHub) -> None:
    from ocos_middleware.ratelimit import RateLimiter
    from ocos_redis.ratelimit import RedisRateLimitStore
    from tests.plugins.auth.helpers import handshake

    limits = {"ratelimit": {"messages_per_second": 100, "burst": 100,
                            "principal_messages_per_second": 0.01, "principal_burst": 3,
                            "connections_per_second": 1000, "connection_burst": 1000,
                            "max_connections_per_ip": 2}}
    nodes = [await node(start_hub, prefix, enabled=("ticks", "redis", "ratelimit"),
                        overrides={"plugins": limits}) for _ in range(2)]
    # the redis plugin hands the ratelimit plugin its shared store
    for running in nodes:
        (limiter,) = [mw for mw in running.hub.middleware if isinstance(mw, RateLimiter)]
        assert isinstance(limiter.store, RedisRateLimitStore)
    a, b = nodes
    on_a, on_b = await a.connect(), await b.connect()
    assert (await on_a.request("ping"))["type"] == "pong"
    assert (await on_b.request("ping"))["type"] == "pong"
    assert (await on_a.request("ping"))["type"] == "pong"
    for client in (on_b, on_a):  # the anonymous address's three requests are spent
        refused = await client.request("ping")
        assert refused["code"] == "rate_limited" and refused["details"]["limit"] == "principal"

    # two connections from this address are open, one per node: a third is refused anywhere
    for running in nodes:
        resp = await handshake(running)
        assert resp.status == 429 and (await resp.json())["code"] == "too_many_connections"
    await on_b.ws.close()

    async def admitted() -> bool:
        resp = await handshake(a)
        resp.close()
        return resp.status == 101

    await until(admitted, "a connection slot freed by the close on node B")


async def test_connections_of_a_dead_node_stop_counting(prefix: str) -> None:
    from ocos_redis.broker import connect
    from ocos_redis.config import RedisConfig
    from ocos_redis.ratelimit import RedisRateLimitStore

    config = RedisConfig(prefix=prefix)
    alive = RedisRateLimitStore(connect(config, 5.0), prefix, node_ttl=0.5)
    doomed = RedisRateLimitStore(connect(config, 5.0), prefix, node_ttl=0.5)
    assert await doomed.acquire("conns:ip:x", 3) and await doomed.acquire("conns:ip:x", 3)
    assert await alive.acquire("conns:ip:x", 3)
    assert not await alive.acquire("conns:ip:x", 3)
    assert await alive.holders("conns:ip:x") == 3
    assert doomed._alive is not None
    doomed._alive.cancel()  # the node dies: no release, no more liveness

    async def released() -> bool:
        return await alive.holders("conns:ip:x") == 1

    await until(released, "the dead node's connections to expire")
    assert await alive.acquire("conns:ip:x", 3)
    await alive.release("conns:ip:x")
    assert await alive.take("bucket", 1.0, 2.0) == 0.0
    assert await alive.take("bucket", 1.0, 2.0) == 0.0
    assert 0.0 < await alive.take("bucket", 1.0, 2.0) <= 1.0
    await alive.close()
    await doomed.client.aclose()


async def test_a_redis_outage_is_unavailable_then_resumed_without_loss(
    start_hub: StartHub, tmp_path: Path,
) -> None:
    server = PrivateRedis(tmp_path)
    await server.start()
    namespace = unique("outage")
    try:
        # A reconnects slowly: B publishes while A's reader still waits to reconnect
        a = await node(start_hub, namespace, url=server.url, reconnect_min=1.0,
                       reconnect_max=1.0, command_timeout=2)
        b = await node(start_hub, namespace, url=server.url, reconnect_min=0.05,
                       reconnect_max=0.1, command_timeout=2)
        client = await a.connect()
        ack = await client.request("subscribe", topic="ticks")
        await b.publish(tick(1), tick(2))
        assert await offsets(client, 2) == [1, 2]

        await server.kill()
        assert await ready(a) == 503 and await ready(b) == 503
        resp = await a.http.post("/api/v1/events",
                                 json={"topic": "ticks", "event": "tick", "data": {"n": 3}})
        assert resp.status == 503
        body = await resp.json()
        assert body["code"] == "unavailable" and "Redis" in body["message"]
        publisher = await b.connect()
        refused = await publisher.request("publish", topic="ticks", event="tick", data={"n": 3})
        assert refused["code"] == "unavailable"

        await server.start()
        await until(lambda: _is_ready(b), "node B ready")
        assert await b.publish(tick(3), tick(4)) == [3, 4]
        assert [e["data"]["n"] for e in await client.events(2)] == [3, 4]
        await until(lambda: _is_ready(a), "node A ready")
        resumed = await (await a.connect()).request(
            "subscribe", topic="ticks", since={"offset": 1, "epoch": ack["epoch"]})
        assert resumed["recovered"] is True and resumed["offset"] == 4
        await client.nothing()
    finally:
        await server.kill()


async def _is_ready(running: RunningHub) -> bool:
    return await ready(running) == 200


async def test_history_lost_in_redis_makes_subscribers_resume_in_the_new_epoch(
    start_hub: StartHub, tmp_path: Path,
) -> None:
    server = PrivateRedis(tmp_path, persistent=False)
    await server.start()
    namespace = unique("lost")
    try:
        a = await node(start_hub, namespace, url=server.url, reconnect_min=0.05,
                       reconnect_max=0.1, command_timeout=2)
        client = await a.connect()
        ack = await client.request("subscribe", topic="ticks")
        await a.publish(tick(1), tick(2))
        assert await offsets(client, 2) == [1, 2]
        await server.kill()
        await server.start()  # empty: every key is gone
        await until(lambda: _is_ready(a), "node A ready")
        notice = await client.recv()
        assert notice["type"] == "error" and notice["code"] == "slow_consumer"
        assert await close_code(client) == 4008

        assert await a.publish(tick(3)) == [1]
        again = await a.connect()
        resumed = await again.request("subscribe", topic="ticks",
                                      since={"offset": 2, "epoch": ack["epoch"]})
        assert resumed["recovered"] is False and resumed["epoch"] != ack["epoch"]
        assert resumed["offset"] == 1
        await a.publish(tick(4))
        assert await offsets(again, 1) == [2]
    finally:
        await server.kill()


async def test_unreachable_redis_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    dead = PrivateRedis(tmp_path)  # never started: nothing listens on its port
    config = parse_config(merge(OPEN, {"plugins": {
        "enabled": ["ticks", "redis"],
        "redis": {"url": f"redis://:hunter2@127.0.0.1:{dead.port}/0"}}}), "test config")
    app = create_app(config, plugins=[("ticks", TicksPlugin())])
    runner = web.AppRunner(app)
    with pytest.raises(ConfigError) as caught:
        await runner.setup()
    await runner.cleanup()
    message = str(caught.value)
    assert message.startswith(f"[plugins.redis] url: cannot reach Redis at "
                              f"redis://:***@127.0.0.1:{dead.port}/0")
    assert "hunter2" not in message

    path = tmp_path / "hub.toml"
    path.write_text(f'[plugins]\nenabled = ["redis"]\n[plugins.redis]\n'
                    f'url = "redis://127.0.0.1:{dead.port}/0"\n')
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "ocos_hub", "serve", "--config", str(path),
                         "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"cannot reach Redis at redis://127.0.0.1:{dead.port}/0" in done.stderr
