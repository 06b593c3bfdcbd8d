"""Delivery guarantees: order, recovery, slow consumers, heartbeat and graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any, ClassVar

import pytest
from aiohttp import WSMsgType

from ocos_hub import Middleware, Operation, Request, hookimpl, outbox
from tests.conftest import RunningHub, StartHub
from tests.ticks import tick


async def test_since_recovers_what_was_missed_then_goes_live(running: RunningHub) -> None:
    client = await running.connect()
    ack = await client.request("subscribe", topic="ticks")
    await running.publish(tick(1), tick(2), tick(3))
    assert [e["offset"] for e in await client.events(3)] == [1, 2, 3]
    await client.ws.close()
    await running.publish(tick(4), tick(5))
    again = await running.connect()
    resumed = await again.request("subscribe", topic="ticks",
                                  since={"offset": 3, "epoch": ack["epoch"]})
    assert resumed["recovered"] is True and resumed["offset"] == 5
    assert [e["offset"] for e in await again.events(2)] == [4, 5]
    await running.publish(tick(6))
    assert [e["offset"] for e in await again.events(1)] == [6]
    await again.nothing()


async def test_since_after_trimmed_history_is_not_recovered(start_hub: StartHub) -> None:
    running = await start_hub({"history": {"max_events": 3}})
    epoch = (await running.hub.broker.position("ticks")).epoch
    await running.publish(*(tick(n) for n in range(1, 11)))
    client = await running.connect()
    ack = await client.request("subscribe", topic="ticks", since={"offset": 2, "epoch": epoch})
    assert ack["recovered"] is False and ack["offset"] == 10
    assert [e["offset"] for e in await client.events(3)] == [8, 9, 10]


async def test_since_with_another_epoch_sends_nothing_old(running: RunningHub) -> None:
    await running.publish(tick(1), tick(2))
    client = await running.connect()
    ack = await client.request("subscribe", topic="ticks",
                               since={"offset": 1, "epoch": "an-older-lineage"})
    assert ack["recovered"] is False and ack["offset"] == 2
    await client.nothing()
    await running.publish(tick(3))
    assert [e["offset"] for e in await client.events(1)] == [3]


async def test_rewind_sends_last_n_then_live(running: RunningHub) -> None:
    await running.publish(*(tick(n) for n in range(1, 6)))
    client = await running.connect()
    ack = await client.request("subscribe", topic="ticks", rewind=2, filter={"min_n": 5})
    assert ack["offset"] == 5
    assert [e["offset"] for e in await client.events(1)] == [5]
    await running.publish(tick(4), tick(6))
    assert [e["data"]["n"] for e in await client.events(1)] == [6]


async def test_replay_during_concurrent_publishing_has_no_gap_or_duplicate(
    running: RunningHub,
) -> None:
    epoch = (await running.hub.broker.position("ticks")).epoch
    await running.publish(*(tick(n) for n in range(1, 51)))

    async def produce() -> None:
        for n in range(51, 151):
            await running.hub.publish("ticks", "tick", {"n": n})
            await asyncio.sleep(0)

    client = await running.connect()
    producer = asyncio.create_task(produce())
    ack = await client.request("subscribe", topic="ticks", since={"offset": 10, "epoch": epoch})
    await producer
    events = await client.events(150 - 10)
    assert ack["recovered"] is True
    assert [e["offset"] for e in events] == list(range(11, 151))


async def test_many_subscribers_receive_identical_bytes(running: RunningHub) -> None:
    clients = [await running.connect() for _ in range(20)]
    for client in clients:
        await client.request("subscribe", topic="ticks")
    await running.publish(*(tick(n) for n in range(10)))
    frames = []
    for client in clients:
        got = []
        for _ in range(10):
            msg = await client.ws.receive(timeout=5)
            got.append(msg.data)
        frames.append(got)
    assert all(f == frames[0] for f in frames)
    assert [json.loads(f)["offset"] for f in frames[0]] == list(range(1, 11))


async def test_events_published_mid_sweep_reach_everyone_once_in_order(
    running: RunningHub, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One connection written per loop iteration: every event below lands in the middle of
    # a sweep, members end up owed from different points, and sweeps follow each other.
    monkeypatch.setattr(outbox, "FLUSH_SLICE", 0.0)
    clients = [await running.connect() for _ in range(12)]
    for client in clients:
        await client.request("subscribe", topic="ticks")
    late, leaving = await running.connect(), clients[-1]
    hub = running.hub
    for n in range(1, 41):
        await hub.publish(*tick(n))
        await asyncio.sleep(0)
        if n == 15:
            await late.ws.send_json({"type": "subscribe", "id": 1, "topic": "ticks"})
            await leaving.ws.send_json({"type": "unsubscribe", "id": 2, "topic": "ticks"})
    for client in clients[:-1]:
        assert [e["offset"] for e in await client.events(40)] == list(range(1, 41))
        await client.nothing()
    # joined mid-sweep: exactly what followed its ack
    ack = await late.recv()
    assert ack["type"] == "ack"
    assert [e["offset"] for e in await late.events(40 - ack["offset"])] == list(
        range(ack["offset"] + 1, 41))
    # left mid-sweep: a gapless prefix, then the ack, then nothing
    before = []
    while (frame := await leaving.recv())["type"] == "event":
        before.append(frame["offset"])
    assert frame["type"] == "ack" and before == list(range(1, len(before) + 1))
    await leaving.nothing()


# -- slow consumers ---------------------------------------------------------------------


async def raw_subscriber(port: int, topic: str) -> tuple[asyncio.StreamReader, Any]:
    """A WebSocket client on a raw socket with a tiny receive buffer that stops reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await reader.readuntil(b"\r\n\r\n")
    await read_frame(reader)  # welcome
    payload = json.dumps({"type": "subscribe", "topic": topic}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    writer.write(bytes((0x81, 0x80 | len(payload))) + mask + masked)
    await read_frame(reader)  # ack
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return head[0] & 0x0F, await reader.readexactly(size)


async def test_slow_consumer_is_closed_4008_and_others_get_everything(
    start_hub: StartHub,
) -> None:
    running = await start_hub({"server": {"send_buffer_bytes": 65536}})
    port = running.http.server.port
    assert port is not None
    reader, writer = await raw_subscriber(port, "ticks")
    fast = await running.connect()
    await fast.request("subscribe", topic="ticks")
    padding = "x" * 2000
    received: list[int] = []

    async def drain_fast() -> None:
        while len(received) < 2000:
            received.extend(e["data"]["n"] for e in await fast.events(1))

    reading = asyncio.create_task(drain_fast())
    for start in range(0, 2000, 100):
        await running.publish(*(tick(n, owner=padding) for n in range(start, start + 100)))
        await asyncio.sleep(0.01)
    await asyncio.wait_for(reading, 10)
    assert received == list(range(2000))
    assert running.hub.stats.slow_consumers == 1

    frames = []
    while True:
        opcode, payload = await asyncio.wait_for(read_frame(reader), 10)
        frames.append((opcode, payload))
        if opcode == 0x8:
            break
    notice = json.loads(frames[-2][1])
    assert notice["type"] == "error" and notice["code"] == "slow_consumer"
    assert notice["id"] is None
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 4008
    writer.close()


class Hold(Operation):
    """A request that takes as long as the test wants (a slow plugin operation)."""

    name = "hold"
    request_model: ClassVar[type[Request]] = Request

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, session: Any, request: Request) -> dict[str, Any]:
        await self.release.wait()
        return {}


class HoldPlugin:
    def __init__(self) -> None:
        self.op = Hold()

    @hookimpl
    def ocos_operations(self, config: Any) -> list[Operation]:
        return [self.op]


async def test_events_wait_for_a_slow_request_within_a_bound(start_hub: StartHub) -> None:
    # Events published while a request is handled follow its reply; a request that takes
    # too long does not let them pile up without bound: 8 x send_buffer_bytes, then 4008.
    plugin = HoldPlugin()
    running = await start_hub({"server": {"send_buffer_bytes": 65536}},
                              plugins=[("hold", plugin)], enabled=["ticks", "hold"])
    patient, stuck, other = [await running.connect() for _ in range(3)]
    for client in (patient, stuck, other):
        await client.request("subscribe", topic="ticks")

    await patient.ws.send_json({"type": "hold", "id": "h"})
    await asyncio.sleep(0.05)
    await running.publish(*(tick(n) for n in range(5)))
    await asyncio.sleep(0.05)
    plugin.op.release.set()
    assert (await patient.recv())["id"] == "h"  # the reply first, then what came meanwhile
    assert [e["data"]["n"] for e in await patient.events(5)] == list(range(5))
    for client in (other, stuck):
        assert [e["data"]["n"] for e in await client.events(5)] == list(range(5))

    plugin.op.release.clear()
    await stuck.ws.send_json({"type": "hold", "id": "h"})
    await asyncio.sleep(0.05)
    padding = "x" * 2000
    for start in range(0, 400, 50):  # about 800 KB while the request is held
        await running.publish(*(tick(n, owner=padding) for n in range(start, start + 50)))
        await asyncio.sleep(0.01)
    assert [e["data"]["n"] for e in await other.events(400)][-1] == 399
    notice = await stuck.recv()
    assert notice.get("code") == "slow_consumer", notice
    closing = await stuck.ws.receive(timeout=5)
    assert closing.type is WSMsgType.CLOSE and closing.data == 4008
    plugin.op.release.set()


class SlowReplies(Middleware):
    """Awaits after every reply (an audit trail writing, say): events keep coming meanwhile."""

    async def on_reply(self, session: Any, request: Any, reply: Any) -> None:
        await asyncio.sleep(0.05)


class SlowRepliesPlugin:
    @hookimpl
    def ocos_middleware(self, config: Any) -> list[Middleware]:
        return [SlowReplies()]


async def test_a_replay_precedes_the_live_events_published_while_its_reply_is_seen(
    start_hub: StartHub,
) -> None:
    running = await start_hub(plugins=[("slow-replies", SlowRepliesPlugin())],
                              enabled=["ticks", "slow-replies"])
    await running.publish(*(tick(n) for n in range(1, 6)))
    client = await running.connect()
    await client.ws.send_json({"type": "subscribe", "id": 1, "topic": "ticks", "rewind": 5})
    await asyncio.sleep(0.01)  # the replay is queued; the reply's middleware still awaits
    await running.hub.publish(*tick(6))
    assert (await client.recv())["type"] == "ack"
    assert [e["offset"] for e in await client.events(6)] == [1, 2, 3, 4, 5, 6]


async def test_heartbeat_pings_and_drops_silent_clients(start_hub: StartHub) -> None:
    running = await start_hub({"server": {"heartbeat": 0.2}})
    silent = await running.connect(autoping=False)
    lively = await running.connect()  # answers pings while it reads, as clients do
    lively_frames: list[Any] = []

    async def read_lively() -> None:
        async for msg in lively.ws:
            lively_frames.append(msg)

    reader = asyncio.create_task(read_lively())
    kinds = []
    while True:
        msg = await silent.ws.receive(timeout=5)
        kinds.append(msg.type)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED):
            break
    assert WSMsgType.PING in kinds
    assert silent.ws.close_code == 1008
    await asyncio.sleep(0.6)
    assert not lively.ws.closed and not reader.done()
    reader.cancel()


async def test_shutdown_delivers_everything_then_closes_1001(start_hub: StartHub) -> None:
    running = await start_hub({"server": {"shutdown_grace": 2}})
    clients = [await running.connect() for _ in range(3)]
    for client in clients:
        await client.request("subscribe", topic="ticks")
    await running.publish(*(tick(n) for n in range(500)))
    closing = asyncio.create_task(running.http.server.close())
    for client in clients:
        events = await client.events(500)
        assert [e["offset"] for e in events] == list(range(1, 501))
        assert await client.closed() == 1001
    await closing
