"""The simulator: a coherent, reproducible chain, checked the way a client would check it.

`World` rebuilds the chain's state from the events alone and asserts, event by event, that
each one refers to things that exist and follows what came before (a vote names an open
proposal, a sale a listed token owned by its seller, a reorg's `old_head` the current head).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ocos_hub.config import ConfigError
from ocos_sources.simulator import ZERO_HASH, Chain, SimulatorConfig
from ocos_topics import blocks, dao, governance, identity, liquidity, nft
from tests.conftest import StartHub

TOPICS = {m.topic.name: m.topic for m in (blocks, governance, dao, liquidity, nft, identity)}
ENABLED = [*TOPICS, "simulator"]
NEXT_STATUS = {
    None: {"pending"},
    "pending": {"active", "cancelled"},
    "active": {"passed", "rejected", "cancelled"},
    "passed": {"queued"},
    "queued": {"executed", "failed"},
}
NEXT_KYC = {None: {"pending"}, "pending": {"verified", "rejected"}, "verified": {"expired"},
            "rejected": {"pending"}, "expired": {"pending"}}
NEXT_BRIDGE = {None: {"pending"}, "pending": {"confirmed", "failed"},
               "confirmed": {"completed"}, "failed": {"refunded"}}
OUTCOME = {"passed": "approved", "rejected": "rejected", "cancelled": "deferred"}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class Proposal:
    dao_id: str | None
    starts: datetime
    ends: datetime
    status: str | None = None
    votes: dict[str, tuple[str, int]] = field(default_factory=dict)
    executed: bool | None = None


@dataclass
class Pool:
    tokens: tuple[str, str]
    reserves: list[int]
    shares: dict[str, int] = field(default_factory=dict)


class World:
    """The chain as reconstructed from its events; `see` asserts each event fits it."""

    def __init__(self) -> None:
        self.canonical: dict[int, str] = {}
        self.times: dict[int, datetime] = {}
        self.head = -1
        self.finalized = -1
        self.now = datetime.min.replace(tzinfo=UTC)
        self.block_hashes: set[str] = set()
        self.txs: dict[str, dict[str, Any]] = {}
        self.txs_left = 0  # tx.new still expected for the current block
        self.last_tx: dict[str, Any] | None = None
        self.orphaned_txs: dict[str, dict[str, Any]] = {}
        self.awaited_head: tuple[int, str] | None = None
        self.reorgs = 0
        self.proposals: dict[str, Proposal] = {}
        self.daos: dict[str, dict[str, str]] = {}
        self.owners: dict[str, str] = {}
        self.pools: dict[str, Pool] = {}
        self.stakes: Counter[tuple[str, str]] = Counter()
        self.bridge: dict[str, dict[str, Any]] = {}
        self.rounds: dict[str, int] = {}
        self.collections: set[str] = set()
        self.nfts: dict[tuple[str, str], str] = {}
        self.locked: dict[tuple[str, str], str] = {}
        self.listings: dict[str, dict[str, Any]] = {}
        self.auctions: dict[str, dict[str, Any]] = {}
        self.kyc: dict[str, str | None] = {}
        self.reputation: dict[str, int] = {}
        self.soulbound: dict[str, tuple[str, str, str]] = {}
        self.seen: Counter[str] = Counter()

    def see(self, topic: str, kind: str, data: dict[str, Any]) -> None:
        TOPICS[topic].validate_data(kind, data)
        self.seen[kind] += 1
        if topic == "blocks":
            self._blocks(kind, data)
            return
        # Domain events follow a successful transaction of their block, or open the block
        # (proposal status changes happen when a block's time comes, without a transaction).
        assert self.last_tx is None or self.last_tx["status"] == "success", (kind, data)
        assert self.last_tx is not None or kind in ("proposal.status", "decision.recorded")
        getattr(self, "_" + kind.replace(".", "_"))(data)

    # blocks

    def _blocks(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "block.new":
            assert self.txs_left == 0, "the previous block lacks transactions"
            height = data["height"]
            assert height == self.head + 1
            assert data["parent_hash"] == self.canonical.get(height - 1, ZERO_HASH)
            assert data["hash"] not in self.block_hashes
            ts = when(data["timestamp"])
            if height > 0:
                assert ts > self.times[height - 1]
            self.block_hashes.add(data["hash"])
            self.canonical[height], self.times[height] = data["hash"], ts
            self.head, self.txs_left, self.last_tx = height, data["tx_count"], None
            self.now = max(self.now, ts)
            if self.awaited_head and self.awaited_head[0] == height:
                assert self.awaited_head[1] == data["hash"], "reorg's new_head"
                self.awaited_head = None
        elif kind == "tx.new":
            assert data["block_height"] == self.head and self.txs_left > 0
            self.txs_left -= 1
            if data["hash"] in self.txs:
                # re-included after a reorg: the same transaction, at a replaced height
                assert self.orphaned_txs.pop(data["hash"]) == data
            self.txs[data["hash"]] = data
            self.last_tx = data
        elif kind == "block.finalized":
            assert data["height"] == self.finalized + 1 <= self.head
            assert data["hash"] == self.canonical[data["height"]]
            self.finalized = data["height"]
        elif kind == "chain.reorg":
            assert self.txs_left == 0 and self.awaited_head is None
            fork, depth = data["fork_height"], data["depth"]
            assert data["old_head"] == self.canonical[self.head]
            assert depth == self.head - fork >= 1 and fork >= max(self.finalized, 0)
            self.awaited_head = (self.head, data["new_head"])
            for height in range(fork + 1, self.head + 1):
                del self.canonical[height]
            self.orphaned_txs = {h: tx for h, tx in self.txs.items() if tx["block_height"] > fork}
            self.head = fork
            self.reorgs += 1

    # governance

    def _proposal_created(self, data: dict[str, Any]) -> None:
        assert data["proposal_id"] not in self.proposals
        dao_id = data["dao_id"]
        if dao_id is not None:
            assert self.daos[dao_id].get(data["proposer"]) not in (None, "observer")
        self.proposals[data["proposal_id"]] = Proposal(
            dao_id, when(data["voting_starts"]), when(data["voting_ends"]))

    def _proposal_status(self, data: dict[str, Any]) -> None:
        proposal = self.proposals[data["proposal_id"]]
        status = data["status"]
        assert status in NEXT_STATUS[proposal.status], (proposal.status, status)
        if status == "active":
            assert self.now >= proposal.starts
        if status in ("passed", "rejected"):
            assert self.now >= proposal.ends
            yes = sum(w for c, w in proposal.votes.values() if c == "yes")
            no = sum(w for c, w in proposal.votes.values() if c == "no")
            assert (status == "passed") == (yes > no)
        if status in ("executed", "failed"):
            assert proposal.executed == (status == "executed")
        proposal.status = status

    def _vote_cast(self, data: dict[str, Any]) -> None:
        proposal = self.proposals[data["proposal_id"]]
        assert proposal.status == "active" and self.now < proposal.ends
        assert data["voter"] not in proposal.votes
        if proposal.dao_id is not None:
            assert self.daos[proposal.dao_id].get(data["voter"]) not in (None, "observer")
        proposal.votes[data["voter"]] = (data["choice"], int(data["weight"]))

    def _proposal_executed(self, data: dict[str, Any]) -> None:
        proposal = self.proposals[data["proposal_id"]]
        assert proposal.status == "queued" and proposal.executed is None
        assert self.last_tx is not None and data["tx_hash"] == self.last_tx["hash"]
        proposal.executed = data["success"]

    # DAOs

    def _dao_created(self, data: dict[str, Any]) -> None:
        assert data["dao_id"] not in self.daos
        self.daos[data["dao_id"]] = {data["creator"]: "owner"}

    def _member_joined(self, data: dict[str, Any]) -> None:
        members = self.daos[data["dao_id"]]
        assert data["member"] not in members
        members[data["member"]] = data["role"]

    def _member_left(self, data: dict[str, Any]) -> None:
        members = self.daos[data["dao_id"]]
        assert members.pop(data["member"]) != "owner"

    def _member_role_changed(self, data: dict[str, Any]) -> None:
        members = self.daos[data["dao_id"]]
        assert members[data["member"]] == data["old_role"] != data["role"]
        members[data["member"]] = data["role"]

    def _decision_recorded(self, data: dict[str, Any]) -> None:
        proposal = self.proposals[data["proposal_id"]]
        assert proposal.dao_id == data["dao_id"] in self.daos
        assert data["outcome"] == OUTCOME[str(proposal.status)]

    # liquidity

    def _pool_created(self, data: dict[str, Any]) -> None:
        assert data["pool_id"] not in self.pools
        self.pools[data["pool_id"]] = Pool((data["token_a"], data["token_b"]), [0, 0])

    def _swap(self, data: dict[str, Any]) -> None:
        pool = self.pools[data["pool_id"]]
        assert {data["token_in"], data["token_out"]} == set(pool.tokens)
        assert self.last_tx is not None and data["tx_hash"] == self.last_tx["hash"]
        i = pool.tokens.index(data["token_in"])
        before = pool.reserves[0] * pool.reserves[1]
        pool.reserves[i] += int(data["amount_in"])
        pool.reserves[1 - i] -= int(data["amount_out"])
        assert pool.reserves[1 - i] > 0
        assert pool.reserves[0] * pool.reserves[1] >= before, "constant product"

    def _liquidity_added(self, data: dict[str, Any]) -> None:
        pool = self.pools[data["pool_id"]]
        pool.reserves[0] += int(data["amount_a"])
        pool.reserves[1] += int(data["amount_b"])
        pool.shares[data["provider"]] = pool.shares.get(data["provider"], 0) + int(
            data["shares"])

    def _liquidity_removed(self, data: dict[str, Any]) -> None:
        pool = self.pools[data["pool_id"]]
        assert 0 < int(data["shares"]) <= pool.shares[data["provider"]]
        pool.shares[data["provider"]] -= int(data["shares"])
        pool.reserves[0] -= int(data["amount_a"])
        pool.reserves[1] -= int(data["amount_b"])
        assert min(pool.reserves) > 0

    def _farm_reward(self, data: dict[str, Any]) -> None:
        pool = self.pools[data["farm_id"].replace("farm-", "pool-", 1)]
        assert pool.shares.get(data["account"], 0) > 0

    def _stake(self, data: dict[str, Any]) -> None:
        self.stakes[(data["account"], data["validator"])] += int(data["amount"])

    def _unstake(self, data: dict[str, Any]) -> None:
        key = (data["account"], data["validator"])
        assert 0 < int(data["amount"]) <= self.stakes[key]
        self.stakes[key] -= int(data["amount"])

    def _bridge_transfer(self, data: dict[str, Any]) -> None:
        before = self.bridge.get(data["transfer_id"])
        assert data["status"] in NEXT_BRIDGE[before["status"] if before else None]
        if before is not None:
            assert {**before, "status": data["status"]} == data
        self.bridge[data["transfer_id"]] = data

    def _oracle_price(self, data: dict[str, Any]) -> None:
        assert data["round"] == self.rounds.get(data["feed"], 0) + 1
        self.rounds[data["feed"]] = data["round"]

    # NFTs

    def _collection_created(self, data: dict[str, Any]) -> None:
        assert data["collection"] not in self.collections
        self.collections.add(data["collection"])

    def _nft_minted(self, data: dict[str, Any]) -> None:
        nft = (data["collection"], data["token_id"])
        assert data["collection"] in self.collections and nft not in self.nfts
        self.nfts[nft] = data["owner"]

    def _nft_transferred(self, data: dict[str, Any]) -> None:
        nft = (data["collection"], data["token_id"])
        assert self.nfts[nft] == data["from"] != data["to"] and nft not in self.locked
        self.nfts[nft] = data["to"]

    def _lock(self, data: dict[str, Any], by: str) -> None:
        nft = (data["collection"], data["token_id"])
        assert nft not in self.locked and self.nfts[nft] == data["seller"]
        self.locked[nft] = by

    def _listing_created(self, data: dict[str, Any]) -> None:
        self._lock(data, data["listing_id"])
        self.listings[data["listing_id"]] = data

    def _listing_cancelled(self, data: dict[str, Any]) -> None:
        listing = self.listings.pop(data["listing_id"])
        assert listing["seller"] == data["seller"] == self.last_tx_sender()
        del self.locked[(listing["collection"], listing["token_id"])]

    def _sale(self, data: dict[str, Any]) -> None:
        listing = self.listings.pop(data["listing_id"])
        nft = (data["collection"], data["token_id"])
        assert (listing["collection"], listing["token_id"]) == nft
        assert self.nfts[nft] == listing["seller"] == data["seller"] != data["buyer"]
        assert (listing["price"], listing["currency"]) == (data["price"], data["currency"])
        del self.locked[nft]

    def _auction_started(self, data: dict[str, Any]) -> None:
        self._lock(data, data["auction_id"])
        assert when(data["ends_at"]) > self.now
        self.auctions[data["auction_id"]] = {**data, "bids": []}

    def _auction_bid(self, data: dict[str, Any]) -> None:
        auction = self.auctions[data["auction_id"]]
        assert self.now < when(auction["ends_at"]) and data["bidder"] != auction["seller"]
        floor = auction["bids"][-1][1] if auction["bids"] else int(auction["reserve"])
        assert int(data["amount"]) > floor
        auction["bids"].append((data["bidder"], int(data["amount"])))

    def _auction_settled(self, data: dict[str, Any]) -> None:
        auction = self.auctions.pop(data["auction_id"])
        assert self.now >= when(auction["ends_at"])
        assert auction["bids"][-1] == (data["winner"], int(data["amount"]))
        del self.locked[(auction["collection"], auction["token_id"])]

    # identity

    def _identity_registered(self, data: dict[str, Any]) -> None:
        assert data["subject"] not in self.kyc and data["did"] == f"did:ocos:{data['subject']}"
        self.kyc[data["subject"]] = None
        self.reputation[data["subject"]] = 100

    def _kyc_status(self, data: dict[str, Any]) -> None:
        assert data["status"] in NEXT_KYC[self.kyc[data["subject"]]]
        self.kyc[data["subject"]] = data["status"]

    def _soulbound_issued(self, data: dict[str, Any]) -> None:
        assert data["subject"] in self.kyc and data["token_id"] not in self.soulbound
        if data["kind"] == "kyc":
            assert self.kyc[data["subject"]] == "verified"
        self.soulbound[data["token_id"]] = (data["subject"], data["issuer"], data["kind"])

    def _soulbound_revoked(self, data: dict[str, Any]) -> None:
        held = self.soulbound.pop(data["token_id"])
        assert held == (data["subject"], data["issuer"], data["kind"])

    def _reputation_changed(self, data: dict[str, Any]) -> None:
        assert self.reputation[data["subject"]] == data["old"] != data["new"]
        self.reputation[data["subject"]] = data["new"]

    def last_tx_sender(self) -> str:
        assert self.last_tx is not None
        return str(self.last_tx["from"])


def run(config: SimulatorConfig, count: int) -> World:
    world = World()
    for topic, kind, data in itertools.islice(Chain(config).steps(), count):
        world.see(topic, kind, data)
    return world


def test_ten_thousand_events_are_coherent_and_valid() -> None:
    world = run(SimulatorConfig(), 10_000)
    # every kind of every topic occurs, reorgs included
    assert set(world.seen) == {kind for topic in TOPICS.values() for kind in topic.kinds}
    assert world.reorgs >= 1
    assert world.finalized > 0 and world.head > 500


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coherent_under_stress(seed: int) -> None:
    """Frequent deep reorgs, many failed transactions, crowded blocks."""
    config = SimulatorConfig(seed=seed, reorg_probability=0.2, max_reorg_depth=5,
                             finality_depth=5, failure_rate=0.2, txs_per_block=20, accounts=20)
    world = run(config, 10_000)
    assert world.reorgs > 10
    assert world.seen["tx.new"] > 5000


def test_same_seed_same_stream() -> None:
    def stream(seed: int) -> list[Any]:
        return list(itertools.islice(Chain(SimulatorConfig(seed=seed)).steps(), 3000))

    assert stream(11) == stream(11)
    assert stream(11) != stream(12)


def test_clock_follows_start_and_interval() -> None:
    start = datetime.fromisoformat("2030-05-01T00:00:00Z")
    chain = Chain(SimulatorConfig(block_interval=2.0), start=start)
    batches = list(itertools.islice(chain.batches(), 51))
    assert batches[0].ms == 0
    first = batches[0].steps[0]
    assert first[1] == "block.new" and first[2]["height"] == 0
    assert when(first[2]["timestamp"]) == start
    # 50 blocks, each 2 s give or take 10%
    assert 0.9 * 100_000 <= batches[-1].ms <= 1.1 * 100_000


async def test_source_publishes_to_a_subscriber(start_hub: StartHub) -> None:
    running = await start_hub({"plugins": {"simulator": {"block_interval": 0.01}}},
                              enabled=ENABLED)
    client = await running.connect()
    # blocks flow every 10 ms: the nft ack may come after some of them
    for number, name in enumerate(("blocks", "nft"), 1):
        await client.ws.send_json({"type": "subscribe", "id": number, "topic": name})
    heights: list[int] = []
    offsets: dict[str, list[int]] = {"blocks": [], "nft": []}
    acks = 0
    while len(heights) < 20 or not offsets["nft"] or acks < 2:
        event = await client.recv()
        if event["type"] == "ack":
            acks += 1
            continue
        assert event["type"] == "event", event
        TOPICS[event["topic"]].validate_data(event["event"], event["data"])
        offsets[event["topic"]].append(event["offset"])
        if event["event"] == "block.new":
            heights.append(event["data"]["height"])
    for seen in offsets.values():
        assert seen == sorted(set(seen))
    # heights climb by one, except where a reorg goes back to replace recent blocks
    assert heights[-1] > heights[0] and all(b <= a + 1 for a, b in itertools.pairwise(heights))


async def test_source_publishes_only_to_enabled_topics(start_hub: StartHub) -> None:
    running = await start_hub({"plugins": {"simulator": {"block_interval": 0.01}}},
                              enabled=["blocks", "simulator"])
    topics: set[str] = set()
    running.hub.listeners.append(lambda events: topics.update(e.topic for e in events))
    client = await running.connect()
    await client.request("subscribe", topic="blocks", events=["block.new"])
    await client.events(5)
    assert topics == {"blocks"}


async def test_config_is_validated(start_hub: StartHub) -> None:
    with pytest.raises(ConfigError, match=r"\[plugins.simulator\] block_interval"):
        await start_hub({"plugins": {"simulator": {"block_interval": 0}}}, enabled=ENABLED)


TAMPERED = {
    "block.new": {"parent_hash": "0x" + "ab" * 32},
    "chain.reorg": {"old_head": "0x" + "cd" * 32},
    "vote.cast": {"proposal_id": "prop-999999"},
    "member.left": {"member": "NotAMember1111111111111111111111111111111111"},
    "sale": {"seller": "NotTheOwner111111111111111111111111111111111"},
    "auction.bid": {"amount": "1"},
    "reputation.changed": {"old": 1},
}


@pytest.mark.parametrize("kind", sorted(TAMPERED))
def test_the_checker_notices_incoherent_events(kind: str) -> None:
    """The consistency test above would fail on a wrong stream (a test of the test)."""
    steps = list(itertools.islice(Chain(SimulatorConfig(reorg_probability=0.05)).steps(),
                                  10_000))
    index = next(i for i, step in enumerate(steps) if step[1] == kind)
    topic, _, data = steps[index]
    steps[index] = (topic, kind, {**data, **TAMPERED[kind]})
    world = World()
    with pytest.raises((AssertionError, KeyError)):
        for step in steps:
            world.see(*step)
