"""The analytics topic: its figures from known events, and its publications on a real hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ocos_hub import Event
from ocos_topics import analytics
from ocos_topics.analytics import Analytics, ChainWindow, DaoTracker, HubRates, HubSample
from tests.conftest import StartHub

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ALICE, BOB, CAROL, DAVE, ERIN = (f"{name}1111111111111111111111111111111111111"
                                 for name in ("Ak", "Bk", "Ck", "Dk", "Ek"))


def ev(topic: str, kind: str, **data: Any) -> Event:
    return Event(topic, kind, 0, "2025-06-01T12:00:00.000Z", data)


def block(height: int, seconds: float, tx_count: int, hash: str = "",
          parent: str = "") -> Event:
    """Block `height` (hash `h<height>` unless given) stamped `seconds` after T0."""
    ts = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return ev("blocks", "block.new", height=height, hash=hash or f"h{height}",
              parent_hash=parent or f"h{height - 1}", timestamp=ts, proposer=ALICE,
              tx_count=tx_count)


def tx(height: int, sender: str, to: str) -> Event:
    return ev("blocks", "tx.new", hash=f"t{height}{sender}{to}", block_height=height,
              **{"from": sender}, to=to, value="1", fee="1", status="success")


def test_chain_stats_from_five_blocks_two_seconds_apart() -> None:
    window = ChainWindow()
    counts = [3, 5, 7, 9, 11]
    for i, count in enumerate(counts):
        window.observe(block(i + 1, 2.0 * i, count))
    for sender, to in [(ALICE, BOB), (BOB, CAROL), (ALICE, CAROL)]:
        window.observe(tx(2, sender, to))
    window.observe(tx(5, DAVE, ALICE))
    stats = window.close(10)
    # The first block's parent is unknown, so its time and its 3 transactions are not
    # measured: 5+7+9+11 = 32 transactions over the 8 s from block 1 to block 5.
    assert stats == {"window_s": 10.0, "tps": 4.0, "block_time_avg": 2.0, "tx_count": 35,
                     "active_addresses": 4}

    # The next window measures its first block from the last one of this window.
    window.observe(block(6, 11.0, 6))
    window.observe(block(7, 14.0, 6))
    window.observe(tx(7, ERIN, ERIN))
    assert window.close(10) == {"window_s": 10.0, "tps": 2.0, "block_time_avg": 3.0,
                                "tx_count": 12, "active_addresses": 1}

    assert window.close(10) == {"window_s": 10.0, "tps": None, "block_time_avg": None,
                                "tx_count": 0, "active_addresses": 0}


def test_reorg_replaces_orphaned_blocks() -> None:
    window = ChainWindow()
    window.observe(block(1, 0.0, 1))
    window.observe(block(2, 1.0, 10))
    window.observe(tx(2, ALICE, BOB))
    window.observe(block(3, 2.0, 10))
    window.observe(tx(3, CAROL, DAVE))
    window.observe(ev("blocks", "chain.reorg", fork_height=1, depth=2, old_head="h3",
                      new_head="x3"))
    window.observe(block(2, 1.5, 2, hash="x2", parent="h1"))
    window.observe(block(3, 2.5, 4, hash="x3", parent="x2"))
    window.observe(tx(3, ERIN, ALICE))
    # blocks 1, x2 and x3: gaps 1.5 and 1.0 s for the 6 transactions of x2 and x3
    assert window.close(5) == {"window_s": 5.0, "tps": 2.4, "block_time_avg": 1.25,
                               "tx_count": 7, "active_addresses": 2}


def test_dao_metrics() -> None:
    tracker = DaoTracker()
    for event in [
        ev("dao", "dao.created", dao_id="d1", name="One", creator=ALICE),
        ev("dao", "dao.created", dao_id="d2", name="Two", creator=ERIN),
        *(ev("dao", "member.joined", dao_id="d1", member=m, role="member")
          for m in (BOB, CAROL, DAVE, ERIN)),
        ev("dao", "member.left", dao_id="d1", member=ERIN),
        ev("governance", "proposal.created", proposal_id="p1", title="t", proposer=ALICE,
           voting_starts="2025-06-01T12:00:00Z", voting_ends="2025-06-01T13:00:00Z",
           dao_id="d1"),
        ev("governance", "proposal.created", proposal_id="p2", title="t", proposer=ALICE,
           voting_starts="2025-06-01T12:00:00Z", voting_ends="2025-06-01T13:00:00Z",
           dao_id="d1"),
        ev("governance", "proposal.created", proposal_id="p3", title="t", proposer=ALICE,
           voting_starts="2025-06-01T12:00:00Z", voting_ends="2025-06-01T13:00:00Z"),
        ev("governance", "proposal.status", proposal_id="p1", status="active"),
        ev("governance", "proposal.status", proposal_id="p2", status="active"),
        ev("governance", "proposal.status", proposal_id="p3", status="active"),
        *(ev("governance", "vote.cast", proposal_id=p, voter=v, choice="yes", weight="1")
          for p, v in [("p1", ALICE), ("p2", ALICE), ("p1", BOB), ("p1", ERIN),
                       ("p3", CAROL)]),
    ]:
        tracker.observe(event)
    # d1 has Alice, Bob, Carol, Dave: Alice and Bob voted (Erin left, p3 is no DAO's)
    assert tracker.close() == [
        {"dao_id": "d1", "members": 4, "proposals_active": 2, "participation_rate": 0.5},
        {"dao_id": "d2", "members": 1, "proposals_active": 0, "participation_rate": 0.0},
    ]
    tracker.observe(ev("governance", "proposal.status", proposal_id="p1", status="passed"))
    tracker.observe(ev("governance", "vote.cast", proposal_id="p2", voter=CAROL,
                       choice="no", weight="2"))
    assert tracker.close()[0] == {"dao_id": "d1", "members": 4, "proposals_active": 1,
                                  "participation_rate": 0.25}


def test_hub_rates_over_the_window() -> None:
    rates = HubRates(HubSample(time=100.0, connections=0, subscriptions=0, published=10,
                               deliveries=40, dropped=1))
    assert rates.close(HubSample(time=104.0, connections=3, subscriptions=5, published=30,
                                 deliveries=90, dropped=3)) == {
        "connections": 3, "subscriptions": 5, "events_per_s": 5.0, "deliveries_per_s": 12.5,
        "dropped_connections": 2}


def test_every_figure_fits_the_topic_models() -> None:
    figures = Analytics()
    figures.observe([ev("dao", "dao.created", dao_id="d1", name="One", creator=ALICE),
                     block(1, 0, 1), block(2, 1, 3)])
    drafts = figures.close(10)
    assert [kind for kind, _ in drafts] == ["chain.stats", "dao.metrics"]
    for kind, data in drafts:
        analytics.topic.validate_data(kind, data)
    assert figures.close(10, chain=False) == [("dao.metrics", {
        "dao_id": "d1", "members": 1, "proposals_active": 0, "participation_rate": 0.0})]


@pytest.mark.parametrize(("filter", "kept"), [
    ({"metric": ["hub.stats"]}, ["hub"]),
    ({"dao_id": ["d2"]}, ["chain", "d2", "hub"]),
    ({"metric": ["dao.metrics"], "dao_id": ["d1"]}, ["d1"]),
])
def test_filter(filter: dict[str, Any], kept: list[str]) -> None:
    events = {
        "chain": ev("analytics", "chain.stats", window_s=1.0, tps=None, block_time_avg=None,
                    tx_count=0, active_addresses=0),
        "d1": ev("analytics", "dao.metrics", dao_id="d1", members=1, proposals_active=0,
                 participation_rate=0.0),
        "d2": ev("analytics", "dao.metrics", dao_id="d2", members=1, proposals_active=0,
                 participation_rate=0.0),
        "hub": ev("analytics", "hub.stats", connections=1, subscriptions=1, events_per_s=1.0,
                  deliveries_per_s=1.0, dropped_connections=0),
    }
    parsed = analytics.topic.parse_filter(filter)
    assert parsed is not None
    assert [name for name, event in events.items() if parsed.matches(event)] == kept


async def test_subscriber_receives_chain_stats(start_hub: StartHub) -> None:
    running = await start_hub({"plugins": {"analytics": {"window": 0.05}}},
                              enabled=["blocks", "analytics"])
    client = await running.connect()
    await client.request("subscribe", topic="analytics", filter={"metric": ["chain.stats"]})
    stamp = "2025-06-01T12:00:{:02d}Z".format
    hashes = [f"0x{n:064x}" for n in range(4)]
    await running.publish(*[
        ("blocks", "block.new", {"height": n, "hash": hashes[n],
                                 "parent_hash": hashes[n - 1] if n else "0x" + "f" * 64,
                                 "timestamp": stamp(2 * n), "proposer": ALICE,
                                 "tx_count": 4})
        for n in range(4)
    ], ("blocks", "tx.new", {"hash": "0x1", "block_height": 3, "from": BOB, "to": CAROL,
                             "value": "5", "fee": "1", "status": "success"}))
    # Windows before the publish report nothing; the one after it reports the blocks.
    while True:
        [event] = await client.events(1)
        assert event["event"] == "chain.stats"
        if event["data"]["tx_count"]:
            break
    assert event["data"] == {"window_s": 0.05, "tps": 2.0, "block_time_avg": 2.0,
                             "tx_count": 16, "active_addresses": 2}


async def test_hub_and_dao_figures_from_the_simulated_chain(start_hub: StartHub) -> None:
    running = await start_hub(
        {"plugins": {"analytics": {"window": 0.1}, "simulator": {"block_interval": 0.01}}},
        enabled=["blocks", "governance", "dao", "analytics", "simulator"])
    client = await running.connect()
    await client.request("subscribe", topic="analytics")
    kinds: dict[str, dict[str, Any]] = {}
    while len(kinds) < 3 or not kinds["chain.stats"]["tx_count"]:
        [event] = await client.events(1)
        analytics.topic.validate_data(event["event"], event["data"])
        kinds[event["event"]] = event["data"]
    # the genesis block alone creates DAOs with members
    assert kinds["dao.metrics"]["members"] >= 1
    hub = kinds["hub.stats"]
    assert hub["connections"] == 1 and hub["subscriptions"] == 1
    assert hub["events_per_s"] > 0


async def test_shutdown_stops_the_task(start_hub: StartHub) -> None:
    running = await start_hub({"plugins": {"analytics": {"window": 0.05}}},
                              enabled=["analytics"])
    hub = running.hub
    runner = analytics._runners[hub]
    assert runner.task is not None and runner.listen in hub.listeners
    task = runner.task
    await running.http.close()
    assert task.done() and hub not in analytics._runners
    assert runner.listen not in hub.listeners
