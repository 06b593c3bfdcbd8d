"""The `replay` extension: history stores, retention, and recovery across a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ocos_extensions.replay import SqliteHistory
from ocos_hub import Event, hookimpl
from ocos_hub.app import create_app
from ocos_hub.broker import HistoryPage, MemoryHistory, Position
from ocos_hub.config import ConfigError, HubConfig, parse_config
from tests.conftest import Client, StartHub
from tests.plugins.extensions.helpers import EXTENSIONS, memory, sqlite
from tests.ticks import TicksPlugin, tick


def offsets(events: list[dict[str, Any]]) -> list[int]:
    return [e["offset"] for e in events]


async def quiet(client: Client) -> None:
    """Nothing more is queued for the client: a ping's pong is the next frame."""
    assert (await client.request("ping"))["type"] == "pong"


async def test_sqlite_history_survives_a_restart(start_hub: StartHub, tmp_path: Path) -> None:
    config = sqlite(tmp_path / "history.sqlite3")
    first = await start_hub(config, enabled=EXTENSIONS)
    client = await first.connect()
    ack = await client.request("subscribe", topic="ticks")
    await first.publish(*(tick(n) for n in range(1, 6)))
    assert offsets(await client.events(5)) == [1, 2, 3, 4, 5]
    await client.ws.close()
    await first.publish(tick(6), tick(7), tick(8))  # missed, then the hub stops
    await first.http.close()

    second = await start_hub(config, enabled=EXTENSIONS)
    assert await second.hub.broker.position("ticks") == Position(8, ack["epoch"])
    assert await second.publish(tick(9)) == [9]  # offsets continue
    again = await second.connect()
    resumed = await again.request("subscribe", topic="ticks",
                                  since={"offset": 5, "epoch": ack["epoch"]})
    assert resumed["recovered"] is True and resumed["offset"] == 9
    events = await again.events(4)
    assert offsets(events) == [6, 7, 8, 9]
    assert [e["data"]["n"] for e in events] == [6, 7, 8, 9]
    await second.publish(tick(10))
    assert offsets(await again.events(1)) == [10]
    await quiet(again)


async def test_memory_history_starts_a_new_epoch_at_restart(start_hub: StartHub) -> None:
    first = await start_hub(enabled=EXTENSIONS)
    await first.publish(tick(1), tick(2))
    epoch = (await first.hub.broker.position("ticks")).epoch
    await first.http.close()
    second = await start_hub(enabled=EXTENSIONS)
    client = await second.connect()
    ack = await client.request("subscribe", topic="ticks", since={"offset": 1, "epoch": epoch})
    assert ack["recovered"] is False and ack["epoch"] != epoch and ack["offset"] == 0


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_resume_after_history_was_lost_is_not_recovered(
    start_hub: StartHub, tmp_path: Path, store: str,
) -> None:
    overrides = (sqlite(tmp_path / "h.sqlite3", max_events=5) if store == "sqlite"
                 else memory(max_events=5))
    running = await start_hub(overrides, enabled=EXTENSIONS)
    client = await running.connect()
    ack = await client.request("subscribe", topic="ticks")
    await running.publish(tick(1), tick(2))
    assert offsets(await client.events(2)) == [1, 2]
    await client.ws.close()
    await running.publish(*(tick(n) for n in range(3, 21)))
    again = await running.connect()
    resumed = await again.request("subscribe", topic="ticks",
                                  since={"offset": 2, "epoch": ack["epoch"]})
    assert resumed["recovered"] is False and resumed["offset"] == 20
    assert offsets(await again.events(5)) == [16, 17, 18, 19, 20]
    await running.publish(tick(21))
    assert offsets(await again.events(1)) == [21]


async def test_sqlite_replay_during_publishing_has_no_gap_or_duplicate(
    start_hub: StartHub, tmp_path: Path,
) -> None:
    running = await start_hub(sqlite(tmp_path / "h.sqlite3"), enabled=EXTENSIONS)
    await running.publish(*(tick(n) for n in range(1, 51)))
    epoch = (await running.hub.broker.position("ticks")).epoch

    async def produce() -> None:
        for n in range(51, 201):
            await running.hub.publish("ticks", "tick", {"n": n})

    clients = [await running.connect() for _ in range(5)]
    producer = asyncio.create_task(produce())
    acks = []
    for index, client in enumerate(clients):
        acks.append(await client.request("subscribe", topic="ticks",
                                         since={"offset": 10 * index, "epoch": epoch}))
        await asyncio.sleep(0)
    await producer
    for index, client in enumerate(clients):
        assert acks[index]["recovered"] is True
        assert offsets(await client.events(200 - 10 * index)) == list(range(10 * index + 1,
                                                                             201))
        await quiet(client)


# -- an async store whose reads let publishes in ----------------------------------------


class YieldingHistory(MemoryHistory):
    """A store that suspends in every read, as a networked or threaded store does."""

    async def position(self, topic: str) -> Position:
        for _ in range(5):
            await asyncio.sleep(0)
        return await super().position(topic)

    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        for _ in range(5):
            await asyncio.sleep(0)
        return await super().read(topic, after, limit)


class YieldingStore:
    @hookimpl
    def ocos_history_store(self, config: Any, hub_config: HubConfig) -> YieldingHistory:
        return YieldingHistory()


async def test_a_page_cut_short_by_max_replay_goes_live_from_its_end(
    start_hub: StartHub,
) -> None:
    running = await start_hub({"history": {"max_replay": 10}},
                              plugins=[("yielding", YieldingStore())],
                              enabled=("ticks", "yielding"))
    await running.publish(*(tick(n) for n in range(1, 51)))
    epoch = (await running.hub.broker.position("ticks")).epoch
    client = await running.connect()
    done = asyncio.Event()

    async def produce() -> None:
        n = 51
        while not done.is_set():
            await running.hub.publish("ticks", "tick", {"n": n})
            await asyncio.sleep(0)
            n += 1

    producer = asyncio.create_task(produce())
    ack = await client.request("subscribe", topic="ticks", since={"offset": 5, "epoch": epoch})
    done.set()
    await producer
    last = (await running.hub.broker.position("ticks")).offset
    assert ack["recovered"] is False and last > ack["offset"]
    events = await client.events(last - ack["offset"] + 10)
    assert offsets(events) == list(range(ack["offset"] - 9, last + 1))


# -- long replays are paced ----------------------------------------------------------------


PADDING = "p" * 400
SMALL_BUFFER = {"server": {"send_buffer_bytes": 65536}}  # a replay of 3,000 is ~20 times it


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_replay_far_beyond_the_send_buffer_arrives_whole(
    start_hub: StartHub, tmp_path: Path, store: str,
) -> None:
    overrides = sqlite(tmp_path / "h.sqlite3") if store == "sqlite" else memory()
    running = await start_hub({**SMALL_BUFFER, **overrides}, enabled=EXTENSIONS)
    await running.hub.publish_many([(*tick(n, owner=PADDING), None) for n in range(1, 3001)])
    epoch = (await running.hub.broker.position("ticks")).epoch

    async def produce() -> None:
        for n in range(3001, 3201):
            await running.hub.publish("ticks", "tick", {"n": n})
            await asyncio.sleep(0)

    client = await running.connect()
    producer = asyncio.create_task(produce())
    ack = await client.request("subscribe", topic="ticks", since={"offset": 0, "epoch": epoch})
    assert ack["recovered"] is True
    events = await client.events(3200)  # an error frame here would fail the read
    await producer
    assert offsets(events) == list(range(1, 3201))
    assert running.hub.stats.slow_consumers == 0
    await quiet(client)


async def test_a_long_filtered_replay_sends_only_what_the_filter_keeps(
    start_hub: StartHub,
) -> None:
    running = await start_hub(SMALL_BUFFER, enabled=EXTENSIONS)
    await running.hub.publish_many([(*tick(n, owner=PADDING), None) for n in range(1, 3001)])
    client = await running.connect()
    await client.request("subscribe", topic="ticks", rewind=3000,
                         where={"data.n": {"in": list(range(0, 3501, 250))}})
    await running.publish(tick(3250))
    assert [e["data"]["n"] for e in await client.events(13)] == list(range(250, 3251, 250))
    await quiet(client)


async def test_unsubscribing_stops_a_long_replay(start_hub: StartHub) -> None:
    running = await start_hub(SMALL_BUFFER, enabled=EXTENSIONS)
    await running.hub.publish_many([(*tick(n, owner=PADDING), None) for n in range(1, 3001)])
    client = await running.connect()
    await client.ws.send_json({"type": "subscribe", "id": "s", "topic": "ticks", "rewind": 3000})
    await client.ws.send_json({"type": "unsubscribe", "id": "u", "topic": "ticks"})
    replayed = []
    while (frame := await client.recv())["type"] != "ack" or frame["id"] != "u":
        if frame["type"] == "event":
            replayed.append(frame["offset"])
    assert replayed == list(range(1, len(replayed) + 1)) and len(replayed) < 3000
    await running.publish(tick(3001))
    await quiet(client)
    assert running.hub.router.count("ticks") == 0


# -- the SQLite store itself -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_sqlite_trims_by_age_and_count_and_keeps_offsets(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteHistory(tmp_path / "h.sqlite3", max_events=4, max_age=10, clock=clock)
    await store.open()
    try:
        await store.append([("a", "tick", {"n": n}) for n in range(1, 4)])
        clock.now += 5
        await store.append([("a", "tick", {"n": 4}), ("b", "tick", {"n": 1})])
        page = await store.read("a", 0, 100)
        assert [e.offset for e in page.events] == [1, 2, 3, 4]
        clock.now += 6  # 1..3 are 11 s old now, 4 is 6 s old
        page = await store.read("a", 0, 100)
        assert [e.offset for e in page.events] == [4]
        assert (page.first_offset, page.last_offset) == (4, 4)
        events = await store.append([("a", "tick", {"n": n}) for n in range(5, 11)])
        assert [e.offset for e in events] == [5, 6, 7, 8, 9, 10]
        page = await store.read_last("a", 100)
        assert [e.offset for e in page.events] == [7, 8, 9, 10]  # max_events
        assert [e.data for e in page.events] == [{"n": n} for n in (7, 8, 9, 10)]
        back = await store.read_before("a", 9, 1)
        assert [e.offset for e in back.events] == [8]
        clock.now += 100
        gone = await store.read("a", 0, 100)
        assert gone.events == [] and (gone.first_offset, gone.last_offset) == (11, 10)
        assert await store.position("a") == Position(10, store.epoch)
        assert [e.offset for e in await store.append([("a", "tick", {})])] == [11]
        assert (await store.read("b", 0, 10)).events == []  # b aged out on read
    finally:
        await store.close()


async def test_sqlite_reads_never_show_an_append_not_yet_returned(tmp_path: Path) -> None:
    """What a subscriber reads must not overlap what the router delivers afterwards."""
    store = SqliteHistory(tmp_path / "h.sqlite3")
    await store.open()
    try:
        await store.append([("a", "tick", {"n": 1})])
        appending = asyncio.ensure_future(store.append([("a", "tick", {"n": 2})]))
        reading = asyncio.ensure_future(store.read("a", 0, 10))
        await asyncio.sleep(0)  # both jobs are queued on the worker: append first
        page = await reading
        stored = await appending
        assert [e.offset for e in page.events] == [1] and page.last_offset == 1
        assert [e.offset for e in stored] == [2]
        assert [e.offset for e in (await store.read("a", 0, 10)).events] == [1, 2]
    finally:
        await store.close()


async def test_sqlite_file_is_wal_and_holds_the_epoch(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = SqliteHistory(path)
    await store.open()
    await store.append([("a", "tick", {"n": 1})])
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone() == (
            store.epoch,)
    reopened = SqliteHistory(path)
    await reopened.open()
    try:
        assert await reopened.position("a") == Position(1, store.epoch)
        [event] = (await reopened.read("a", 0, 10)).events
        assert isinstance(event, Event) and event.data == {"n": 1} and event.kind == "tick"
    finally:
        await reopened.close()


async def test_sqlite_keeps_frames_of_every_size(tmp_path: Path) -> None:
    store = SqliteHistory(tmp_path / "h.sqlite3")
    await store.open()
    try:
        sizes = [1, 200, 70_000]  # 7-bit, 16-bit and 64-bit frame lengths
        stored = await store.append([("a", "tick", {"pad": "é" * size}) for size in sizes])
        page = await store.read("a", 0, 10)
        for kept, read in zip(stored, page.events, strict=True):
            assert read.data == kept.data and read.kind == "tick" and read.ts == kept.ts
            assert read.frame == kept.frame == Event("a", "tick", read.offset, read.ts,
                                                     read.data).frame
    finally:
        await store.close()


# -- configuration -----------------------------------------------------------------------


def test_sqlite_store_needs_a_path() -> None:
    config = parse_config({"plugins": {"enabled": ["ticks", "replay"],
                                       "replay": {"store": "sqlite"}}})
    with pytest.raises(ConfigError, match=r"\[plugins.replay\] path: .*needs the SQLite"):
        create_app(config, plugins=[("ticks", TicksPlugin())])


def test_unknown_store_is_refused() -> None:
    config = parse_config({"plugins": {"enabled": ["ticks", "replay"],
                                       "replay": {"store": "redis"}}})
    with pytest.raises(ConfigError, match=r"\[plugins.replay\] store"):
        create_app(config, plugins=[("ticks", TicksPlugin())])


async def test_unusable_sqlite_path_stops_the_start(start_hub: StartHub, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot use .*missing"):
        await start_hub(sqlite(tmp_path / "missing" / "h.sqlite3"), enabled=EXTENSIONS)


async def test_memory_store_is_sized_by_the_section(start_hub: StartHub) -> None:
    default = await start_hub(enabled=EXTENSIONS)
    assert type(default.hub.broker.history) is MemoryHistory  # type: ignore[attr-defined]
    sized = await start_hub(memory(max_events=3, max_age=60), enabled=EXTENSIONS)
    store = sized.hub.broker.history  # type: ignore[attr-defined]
    assert (store.max_events, store.max_age) == (3, 60)
