"""Many hub nodes on one NATS JetStream behave as one hub: order, resume, epoch, ingest,
outages."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from aiohttp import web

from ocos_hub.app import create_app
from ocos_hub.config import ConfigError, merge, parse_config
from tests.conftest import OPEN, RunningHub, StartHub
from tests.contrib.scaleout import (
    NATS_URL,
    Follower,
    PrivateNats,
    close_code,
    offsets,
    ready,
    unique,
    until,
)
from tests.ticks import TicksPlugin, tick


async def delete_streams(url: str, name: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for stream in (name, f"{name}_INGEST"):
        try:
            await js.delete_stream(stream)
        except nats.js.errors.NotFoundError:
            pass
    await nc.close()


@pytest.fixture
async def name() -> AsyncIterator[str]:
    """A stream name and subject prefix of this test only; its streams are deleted after
    (list it before `start_hub` so that the nodes stop first)."""
    chosen = unique("nats")
    yield chosen
    await delete_streams(NATS_URL, chosen)


async def node(start_hub: StartHub, name: str, *, url: str = NATS_URL,
               overrides: dict[str, Any] | None = None, **section: Any) -> RunningHub:
    nats_section = {"url": url, "stream": name, "prefix": name, "heartbeat": 0.5, **section}
    return await start_hub(merge({"plugins": {"nats": nats_section}}, overrides or {}),
                           enabled=("ticks", "nats"))


async def pair(start_hub: StartHub, name: str, **section: Any) -> tuple[RunningHub, RunningHub]:
    return (await node(start_hub, name, **section), await node(start_hub, name, **section))


async def _is_ready(running: RunningHub) -> bool:
    return await ready(running) == 200


async def test_events_published_on_either_node_reach_both_in_order(
    name: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, name)
    on_a, on_b = await a.connect(), await b.connect()
    for client in (on_a, on_b):
        assert (await client.request("subscribe", topic="ticks"))["offset"] == 0

    async def produce(running: RunningHub, base: int) -> None:
        for n in range(base, base + 30):
            await running.publish(tick(n))

    await asyncio.gather(produce(a, 100), produce(b, 200))
    for client in (on_a, on_b):
        events = await client.events(60)
        assert [e["offset"] for e in events] == list(range(1, 61))
        assert [e["data"]["n"] for e in events if e["data"]["n"] < 200] == list(range(100, 130))
    await on_a.nothing()


async def test_concurrent_batches_get_distinct_consecutive_offsets(
    name: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, name)
    results = await asyncio.gather(*(
        running.publish(*(tick(n) for n in range(5)))
        for running in (a, b, a, b, a, b)))
    assigned = sorted(offset for batch in results for offset in batch)
    assert assigned == list(range(1, 31))
    client = await b.connect()
    await client.request("subscribe", topic="ticks", rewind=30)
    assert await offsets(client, 30) == list(range(1, 31))


async def test_a_client_resumes_on_another_node_with_nothing_lost(
    name: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, name)
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
    name: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, name)
    await a.publish(*(tick(n) for n in range(1, 61)))
    await b.publish(("ticks", "tock", {"n": 0}), tick(61, owner="x"))  # interleaves subjects
    await a.publish(*(tick(n) for n in range(62, 121)))
    late = await node(start_hub, name)  # no hints: history is searched in the stream
    positions = {await running.hub.broker.position("ticks") for running in (a, b, late)}
    assert len(positions) == 1
    (position,) = positions
    assert position.offset == 121

    client = await late.connect()
    ack = await client.request("subscribe", topic="ticks", rewind=40)
    assert (ack["offset"], ack["epoch"]) == (121, position.epoch)
    assert await offsets(client, 40) == list(range(82, 122))
    since = await late.connect()
    resumed = await since.request("subscribe", topic="ticks",
                                  since={"offset": 37, "epoch": position.epoch})
    assert resumed["recovered"] is True
    assert await offsets(since, 84) == list(range(38, 122))
    resp = await late.http.get("/api/v1/topics/ticks/events?since=59&limit=4")
    body = await resp.json()
    assert body["epoch"] == position.epoch
    assert [(e["offset"], e["event"]) for e in body["events"]] == [
        (60, "tick"), (61, "tock"), (62, "tick"), (63, "tick")]
    assert (body["first_offset"], body["last_offset"]) == (1, 121)
    page = await late.hub.broker.read_before("ticks", 30, 3)
    assert [e.offset for e in page.events] == [27, 28, 29]


async def test_trimmed_history_is_not_recovered(name: str, start_hub: StartHub) -> None:
    a, b = await pair(start_hub, name, max_msgs_per_subject=10)
    epoch = (await a.hub.broker.position("ticks")).epoch
    await a.publish(*(tick(n) for n in range(1, 51)))
    client = await b.connect()
    ack = await client.request("subscribe", topic="ticks", since={"offset": 2, "epoch": epoch})
    assert ack["recovered"] is False and ack["offset"] == 50
    assert await offsets(client, 10) == list(range(41, 51))
    resumed = await (await a.connect()).request(
        "subscribe", topic="ticks", since={"offset": 40, "epoch": epoch})
    assert resumed["recovered"] is True


async def test_a_producer_publishes_through_the_ingest_subjects(
    name: str, start_hub: StartHub,
) -> None:
    _, b = await pair(start_hub, name)  # either node may take an entry
    client = await b.connect()
    await client.request("subscribe", topic="ticks")
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    entries: list[tuple[str, Any]] = [
        ("ticks", {"event": "tick", "data": {"n": 1}, "key": "block-1"}),
        ("ticks", {"event": "tick", "data": {"n": "one"}}),
        ("nowhere", {"event": "tick", "data": {}}),
        ("ticks", {"event": "tick", "data": {"n": 1}, "key": "block-1"}),
        ("ticks", {"event": "tock", "data": {"n": 2}}),
        ("ticks", [1]),
        ("ticks", {"event": "tick", "data": {"n": 3}, "extra": "x"}),
    ]
    for topic, entry in entries:
        await js.publish(f"{name}.ingest.{topic}", json.dumps(entry).encode())
    for n in range(4, 54):
        await js.publish(f"{name}.ingest.ticks",
                         json.dumps({"event": "tick", "data": {"n": n}}).encode())
    events = await client.events(52)
    assert [(e["offset"], e["event"], e["data"]["n"]) for e in events] == [
        (1, "tick", 1), (2, "tock", 2), *((n - 1, "tick", n) for n in range(4, 54))]
    await client.nothing()

    dead = await js.pull_subscribe(f"{name}.dead.*", stream=name)
    letters = await dead.fetch(4, timeout=5)
    reasons = {msg.subject.rsplit(".", 1)[1] + ": " + msg.headers["Ocos-Error"]
               for msg in letters}
    assert len(letters) == 4
    assert any(r.startswith("ticks: invalid_event: ticks tick: invalid data at n")
               for r in reasons)
    assert "nowhere: unknown_topic: no topic 'nowhere'" in reasons
    assert "ticks: invalid_message: an entry is a JSON object" in reasons
    assert any("unknown fields ['extra']" in r for r in reasons)
    assert (await js.stream_info(f"{name}_INGEST")).state.messages == 0
    await nc.close()


async def test_a_client_follows_the_other_node_when_its_node_stops(
    name: str, start_hub: StartHub,
) -> None:
    a, b = await pair(start_hub, name)
    switch = asyncio.Event()
    followers = [Follower([a.url, b.url], "ticks", 100, switch) for _ in range(3)]

    async def live() -> bool:
        return all(follower.live for follower in followers)

    await until(live, "three subscribers on node A")
    for n in range(1, 51):
        await b.publish(tick(n))
    await a.http.close()
    switch.set()
    for n in range(51, 101):
        await b.publish(tick(n))
    for follower in followers:
        await asyncio.wait_for(follower.task, 30)
        assert [e["offset"] for e in follower.got] == list(range(1, 101))
        assert [e["data"]["n"] for e in follower.got] == list(range(1, 101))


async def test_a_nats_outage_is_unavailable_then_resumed_without_loss(
    start_hub: StartHub, tmp_path: Path,
) -> None:
    server = PrivateNats(tmp_path)
    await server.start()
    namespace = unique("outage")
    try:
        a = await node(start_hub, namespace, url=server.url, reconnect_wait=0.1,
                       command_timeout=2)
        b = await node(start_hub, namespace, url=server.url, reconnect_wait=0.1,
                       command_timeout=2)
        client = await a.connect()
        ack = await client.request("subscribe", topic="ticks")
        await b.publish(tick(1), tick(2))
        assert await offsets(client, 2) == [1, 2]

        await server.kill()

        async def down(running: RunningHub) -> bool:
            return await ready(running) == 503

        await until(lambda: down(a), "node A unready")
        await until(lambda: down(b), "node B unready")
        resp = await a.http.post("/api/v1/events",
                                 json={"topic": "ticks", "event": "tick", "data": {"n": 3}})
        assert resp.status == 503
        body = await resp.json()
        assert body["code"] == "unavailable" and "NATS" in body["message"]

        await server.start()  # the same store directory: the stream survived
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


async def test_a_recreated_stream_makes_subscribers_resume_in_the_new_epoch(
    name: str, start_hub: StartHub,
) -> None:
    a = await node(start_hub, name)
    client = await a.connect()
    ack = await client.request("subscribe", topic="ticks")
    await a.publish(tick(1), tick(2))
    assert await offsets(client, 2) == [1, 2]
    await delete_streams(NATS_URL, name)  # history lost: the reader notices and starts over
    notice = await client.recv(timeout=15)
    assert notice["type"] == "error" and notice["code"] == "slow_consumer"
    assert await close_code(client) == 4008
    await until(lambda: _is_ready(a), "node A ready")
    assert await a.publish(tick(3)) == [1]
    again = await a.connect()
    resumed = await again.request("subscribe", topic="ticks",
                                  since={"offset": 2, "epoch": ack["epoch"]})
    assert resumed["recovered"] is False and resumed["epoch"] != ack["epoch"]
    assert resumed["offset"] == 1


async def test_unreachable_nats_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    dead = PrivateNats(tmp_path)  # never started: nothing listens on its port
    config = parse_config(merge(OPEN, {"plugins": {
        "enabled": ["ticks", "nats"],
        "nats": {"url": f"nats://hub:hunter2@127.0.0.1:{dead.port}", "command_timeout": 1}}}),
        "test config")
    app = create_app(config, plugins=[("ticks", TicksPlugin())])
    runner = web.AppRunner(app)
    with pytest.raises(ConfigError) as caught:
        await runner.setup()
    await runner.cleanup()
    message = str(caught.value)
    assert message.startswith(f"[plugins.nats] url: cannot reach NATS at "
                              f"nats://***@127.0.0.1:{dead.port}")
    assert "hunter2" not in message

    path = tmp_path / "hub.toml"
    path.write_text(f'[plugins]\nenabled = ["nats"]\n[plugins.nats]\n'
                    f'url = "nats://127.0.0.1:{dead.port}"\ncommand_timeout = 1\n')
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "ocos_hub", "serve", "--config", str(path),
                         "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"cannot reach NATS at nats://127.0.0.1:{dead.port}" in done.stderr
