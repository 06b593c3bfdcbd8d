"""Property: clients dropped at random points while a producer publishes still end with
exactly the published sequence their filters keep, in order, no gap, no duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ocos_hub.client import HubClient
from ocos_hub.protocol import Close
from ocos_hub.session import Session
from tests.conftest import RunningHub, StartHub
from tests.plugins.extensions.helpers import EXTENSIONS, memory, sqlite

BASE = 2**70  # tick owners are decimal strings past 2**64: amounts as clients see them
SENTINEL = 10**6  # the last event; every filter below keeps it
_RUNS = count()  # tags each run's connections, so drops hit this run's clients only


@dataclass(frozen=True)
class Filter:
    """Subscribe fields, and what they keep of (kind, n), computed independently."""

    fields: dict[str, Any]
    keeps: Callable[[str, int], bool]


FILTERS = {
    "all": Filter({}, lambda kind, n: True),
    "kinds": Filter({"events": ["tick"]}, lambda kind, n: kind == "tick"),
    "topic filter": Filter({"filter": {"min_n": 60}}, lambda kind, n: n >= 60),
    "where gte": Filter({"where": {"data.n": {"gte": 30}}}, lambda kind, n: n >= 30),
    "where in": Filter({"where": {"data.n": {"in": [*range(0, 300, 3), SENTINEL]}}},
                       lambda kind, n: n % 3 == 0),
    "where decimal": Filter({"where": {"data.owner": {"gt": str(BASE + 90)},
                                       "event": {"eq": "tick"}}},
                            lambda kind, n: kind == "tick" and n > 90),
}


def data_for(kind: str, n: int) -> dict[str, Any]:
    return {"n": n, "owner": str(BASE + n)} if kind == "tick" else {"n": n}


scenarios = st.fixed_dictionaries({
    "kinds": st.lists(st.sampled_from(["tick", "tock"]), min_size=1, max_size=160),
    "batch": st.integers(1, 25),
    "clients": st.lists(st.sampled_from(sorted(FILTERS)), min_size=1, max_size=3),
    # (after which event, modulo their count; which client; how; a pause before it)
    "drops": st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2),
                                st.sampled_from(["close", "abort", "slow"]),
                                st.sampled_from([0.0, 0.0, 0.001, 0.005])),
                      min_size=1, max_size=12),
    "yields": st.integers(0, 3),
})


def drop(session: Session, how: str) -> None:
    if how == "close":
        session.close_soon(Close.INTERNAL, "test: dropped")
    elif how == "slow":
        session.slow_consumer()
    else:  # the network vanishes: queued frames are lost with the connection
        transport = session.request.transport
        if transport is not None:
            transport.abort()


def session_of(running: RunningHub, tag: str) -> Session | None:
    for session in running.hub.sessions:
        if session.request.query.get("c") == tag and not session.closing:
            return session
    return None


async def run_scenario(running: RunningHub, scenario: dict[str, Any]) -> None:
    names: list[str] = scenario["clients"]
    tags = [f"{next(_RUNS)}-{index}" for index in range(len(names))]
    gaps: list[str] = []
    clients = [HubClient(f"{running.url}?c={tag}", min_backoff=0.005, max_backoff=0.05,
                         on_gap=lambda topic, ack: gaps.append(topic)) for tag in tags]
    received: list[list[tuple[int, str, int]]] = [[] for _ in names]

    async def read(index: int) -> None:
        async for frame in clients[index].events():
            n = frame["data"]["n"]
            if n == SENTINEL:
                return
            received[index].append((frame["offset"], frame["event"], n))

    for index, name in enumerate(names):
        await clients[index].__aenter__()
        clients[index].subscribe("ticks", **FILTERS[name].fields)
    readers = [asyncio.create_task(read(index)) for index in range(len(names))]
    try:
        for index in range(len(names)):  # live before the first publish
            while (session := session_of(running, tags[index])) is None or not (
                    session.subscriptions and clients[index].position("ticks")[0] is not None):
                await asyncio.sleep(0.002)

        kinds: list[str] = scenario["kinds"]
        drops = sorted((at % len(kinds), *rest) for at, *rest in scenario["drops"])
        published: list[tuple[int, str, int]] = []
        for start in range(0, len(kinds), scenario["batch"]):
            chunk = [(kind, n) for n, kind in enumerate(kinds[start:start + scenario["batch"]],
                                                        start)]
            offsets = await running.hub.publish_many(
                [("ticks", kind, data_for(kind, n), None) for kind, n in chunk])
            published += [(offset, kind, n) for offset, (kind, n) in zip(offsets, chunk,
                                                                         strict=True)]
            while drops and drops[0][0] < start + len(chunk):
                _, who, how, pause = drops.pop(0)
                if pause:  # let a dropped client come back, to drop it mid-replay
                    await asyncio.sleep(pause)
                session = session_of(running, tags[who % len(names)])
                if session is not None:
                    drop(session, how)
            for _ in range(scenario["yields"]):
                await asyncio.sleep(0)
        await running.hub.publish_many([("ticks", "tick", data_for("tick", SENTINEL), None)])
        await asyncio.wait_for(asyncio.gather(*readers), 30)
    finally:
        for reader in readers:
            reader.cancel()
        for client in clients:
            await client.close()
    event(f"reconnects: {min(5, sum(c.reconnects for c in clients))}+")

    for index, name in enumerate(names):
        expected = [item for item in published if FILTERS[name].keeps(item[1], item[2])]
        assert received[index] == expected, f"client {index} ({name})"
    assert gaps == []


@pytest.fixture
def shared() -> list[RunningHub]:
    """One hub per test case, started by its first example and reused by the others."""
    return []


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios)
async def test_dropped_clients_end_with_exactly_what_was_published(
    start_hub: StartHub, tmp_path: Path, shared: list[RunningHub], store: str,
    scenario: dict[str, Any],
) -> None:
    if not shared:
        overrides = sqlite(tmp_path / "h.sqlite3") if store == "sqlite" else memory()
        shared.append(await start_hub(overrides, enabled=EXTENSIONS))
    await run_scenario(shared[0], scenario)
