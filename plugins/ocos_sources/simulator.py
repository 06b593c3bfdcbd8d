"""The `simulator` source: a seeded, reproducible, coherent fake OCOS-Chain.

`Chain` is a pure, synchronous world: given a seed it produces the same stream of
`(topic, kind, data)` steps every time, one batch per block, and every step refers to things
that exist in that world (a vote names an open proposal and a member who has not voted, a
sale names a listed token owned by its seller, a reorg's `old_head` is the head it replaces,
a finalized block is never reorganised). The demo profile and the tests run it; `Simulator`
only paces it in real time and publishes each block's batch to the topics the hub has.

Time is simulated: block timestamps start at `start` and advance by `block_interval` with a
little jitter, and every time in the data (voting windows, auction ends) is on that clock.
Amounts are integers in base units of their token, written as decimal strings.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from math import isqrt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ocos_hub import HubError, Source, hookimpl

if TYPE_CHECKING:
    from ocos_hub.hub import Hub

log = logging.getLogger("ocos_hub.simulator")

Step = tuple[str, str, dict[str, Any]]

GENESIS_TIME = datetime(2025, 1, 1, tzinfo=UTC)
ZERO_HASH = "0x" + "0" * 64
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _program(name: str) -> str:
    """A readable program address in the style of Solana's (`Stake1111...`)."""
    return name + "1" * (43 - len(name))


GOVERNANCE = _program("Governance")
DAO_REGISTRY = _program("DaoRegistry")
DEX = _program("DexRouter")
FARMS = _program("Farms")
STAKING = _program("Staking")
BRIDGE = _program("Bridge")
PRICE_FEEDS = _program("PriceFeeds")
NFT_MARKET = _program("NftMarket")
DID_REGISTRY = _program("DidRegistry")
PROGRAMS = (GOVERNANCE, DAO_REGISTRY, DEX, FARMS, STAKING, BRIDGE, PRICE_FEEDS, NFT_MARKET,
            DID_REGISTRY)

# symbol -> (decimals, USD price at genesis)
TOKENS: dict[str, tuple[int, float]] = {
    "OCOS": (18, 1.23), "USDC": (6, 1.0), "WETH": (18, 3100.0), "WBTC": (8, 64000.0),
    "DAI": (18, 1.0),
}
NATIVE = "OCOS"
GENESIS_POOLS = (("OCOS", "USDC", 30), ("OCOS", "WETH", 30), ("WETH", "USDC", 5),
                 ("WBTC", "WETH", 30), ("DAI", "USDC", 1))
LATER_POOLS = (("OCOS", "DAI", 100), ("WBTC", "USDC", 30), ("OCOS", "WBTC", 100))
FEEDS = {"OCOS/USD": 1.23, "WETH/USD": 3100.0, "WBTC/USD": 64000.0, "USDC/USD": 1.0}
FEED_DECIMALS = 8
REMOTE_CHAINS = ("ethereum", "solana", "bsc")
KYC_PROVIDERS = ("sumsub", "onfido", "persona")
SOULBOUND_KINDS = ("membership", "contributor", "early-adopter", "validator", "kyc")
REPUTATION_REASONS = ("proposal passed", "vote cast", "dispute lost", "contribution merged",
                      "spam reported", "bounty completed", "attestation received")
DAO_WORDS = ("Builders", "Guild", "Collective", "Treasury", "Grants", "Research", "Artists",
             "Validators", "Commons", "Lab")
DAO_PREFIXES = ("OCOS", "Atlas", "Nova", "Aurora", "Orbit", "Harbor", "Zenith", "Cedar")
TITLES = ("Fund {}", "Raise the {} budget", "Elect a new {} council", "Adopt the {} charter",
          "Pause {} emissions", "Audit the {} contracts", "Lower fees for {}")
TOPICS_OF_TITLES = ("grants", "marketing", "bridge", "treasury", "liquidity mining",
                    "validator", "community", "security")
COLLECTION_NAMES = (("Ocos Punks", "OPUNK"), ("Chain Cats", "CCAT"), ("Orbit Badges", "ORB"),
                    ("Pixel Harbors", "PXH"), ("Genesis Keys", "GKEY"), ("Nova Frames", "NOVA"),
                    ("Atlas Maps", "MAP"), ("Zenith Tiles", "ZEN"))
ROLE_LADDER = ("observer", "member", "council", "admin")  # owner is the creator's alone
VOTING_ROLES = frozenset({"owner", "admin", "council", "member"})

# Relative weight of each kind of transaction a block is filled with.
ACTION_WEIGHTS: dict[str, float] = {
    "transfer": 26, "swap": 14, "add_liquidity": 4, "remove_liquidity": 3, "farm_reward": 3,
    "stake": 4, "unstake": 2, "bridge": 2.5, "oracle": 5, "create_pool": 0.1,
    "create_proposal": 1.2, "vote": 12, "cancel_proposal": 0.25,
    "create_dao": 0.2, "join_dao": 3, "leave_dao": 1, "change_role": 1,
    "create_collection": 0.2, "mint": 6, "transfer_nft": 2, "list": 3, "cancel_listing": 1,
    "buy": 2.5, "start_auction": 1, "bid": 4,
    "register": 2, "kyc": 2.5, "issue_soulbound": 1.5, "revoke_soulbound": 0.4,
    "reputation": 2,
}

# Bounds that keep a long-running demo's memory flat.
MAX_DAOS = 12
MAX_COLLECTIONS = len(COLLECTION_NAMES)
MAX_NFTS = 5000
MAX_SOULBOUND = 5000
MAX_OPEN_PROPOSALS = 8
MAX_OPEN_BRIDGE = 50


class SimulatorConfig(BaseModel):
    """`[plugins.simulator]`."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(7, description="Seed of the world: the same seed gives the same chain.")
    block_interval: float = Field(
        1.0, gt=0, description="Seconds between blocks (each varies by up to 10%).")
    txs_per_block: int = Field(
        6, ge=0, description="Mean transactions per block; each block carries between half "
        "and one and a half times as many.")
    accounts: int = Field(
        200, ge=20, le=100_000, description="Accounts taking part (traders, voters, collectors).")
    failure_rate: float = Field(
        0.03, ge=0, le=1, description="Probability that a transaction fails (it then emits "
        "only its `tx.new`, with status failed).")
    reorg_probability: float = Field(
        0.01, ge=0, le=1, description="Probability, per block, of a reorganisation first.")
    max_reorg_depth: int = Field(3, ge=1, description="Most blocks a reorg replaces.")
    finality_depth: int = Field(
        4, ge=1, description="Blocks after which a block is final (`block.finalized`); "
        "reorgs never reach a final block.")


# -- small helpers --------------------------------------------------------------------------


def base58(number: int) -> str:
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(B58[digit])
    return "".join(reversed(out)) or "1"


def rfc3339(ms: int, start: datetime) -> str:
    moment = start + timedelta(milliseconds=ms)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def units(token: str, amount: float) -> int:
    """`amount` whole tokens in base units."""
    return int(amount * 10 ** TOKENS[token][0])


# -- world state ----------------------------------------------------------------------------


@dataclass
class Tx:
    hash: str
    sender: str
    to: str
    value: int
    fee: int
    ok: bool = True

    def data(self, height: int) -> dict[str, Any]:
        return {"hash": self.hash, "block_height": height, "from": self.sender, "to": self.to,
                "value": str(self.value), "fee": str(self.fee),
                "status": "success" if self.ok else "failed"}


@dataclass
class Block:
    height: int
    hash: str
    parent_hash: str
    ms: int
    proposer: str
    txs: list[Tx]


@dataclass
class Dao:
    dao_id: str
    creator: str
    members: dict[str, str]  # address -> role


@dataclass
class Proposal:
    proposal_id: str
    dao_id: str | None
    proposer: str
    starts_ms: int
    ends_ms: int
    status: str = "pending"
    votes: dict[str, tuple[str, int]] = field(default_factory=dict)
    due_height: int = 0  # when a passed proposal is queued, then executed


@dataclass
class Pool:
    pool_id: str
    token_a: str
    token_b: str
    fee_bps: int
    reserve_a: int = 0
    reserve_b: int = 0
    total_shares: int = 0
    shares: dict[str, int] = field(default_factory=dict)


@dataclass
class Listing:
    listing_id: str
    nft: tuple[str, str]
    seller: str
    price: int
    currency: str


@dataclass
class Auction:
    auction_id: str
    nft: tuple[str, str]
    seller: str
    reserve: int
    currency: str
    ends_ms: int
    bids: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Identity:
    subject: str
    kyc: str = "pending"
    provider: str = KYC_PROVIDERS[0]
    reputation: int = 100


@dataclass
class BridgeTransfer:
    transfer_id: str
    direction: str
    remote_chain: str
    token: str
    amount: int
    sender: str
    recipient: str
    status: str = "pending"
    due_height: int = 0

    def data(self) -> dict[str, Any]:
        return {"transfer_id": self.transfer_id, "direction": self.direction,
                "remote_chain": self.remote_chain, "token": self.token,
                "amount": str(self.amount), "sender": self.sender, "recipient": self.recipient,
                "status": self.status}


# What an action did: who sent its transaction, to what, with how much native value, and the
# domain events it caused. None means the action had nothing to act on.
Effect = tuple[str, str, int, list[Step]]


@dataclass
class Batch:
    """One block's steps (with a reorg's before them), due at `ms` after the start."""

    ms: int
    steps: list[Step]


class Chain:
    """The simulated chain. Iterate `batches()` (or `steps()`); nothing here sleeps."""

    def __init__(self, config: SimulatorConfig | None = None, *,
                 start: datetime = GENESIS_TIME) -> None:
        self.config = config or SimulatorConfig()
        self.start = start.astimezone(UTC)
        self.rng = random.Random(self.config.seed)
        self.interval_ms = max(1, round(self.config.block_interval * 1000))
        self.ms = 0
        self.accounts = [self._address() for _ in range(self.config.accounts)]
        self.validators = [self._address() for _ in range(8)]
        self.oracle = self._address()
        self.relayer = self._address()
        self.issuers = [self._address() for _ in range(3)]
        self.kyc_attestors = {p: self._address() for p in KYC_PROVIDERS}
        self.blocks: dict[int, Block] = {}
        self.head = -1
        self.finalized = -1
        self.counter = 0  # for ids
        self.daos: dict[str, Dao] = {}
        self.proposals: dict[str, Proposal] = {}
        self.pools: dict[str, Pool] = {}
        self.stakes: dict[tuple[str, str], int] = {}
        self.bridge: dict[str, BridgeTransfer] = {}
        self.prices: dict[str, tuple[int, int]] = {}  # feed -> (price, round)
        self.collections: dict[str, int] = {}  # address -> next token id
        self.collection_names: dict[str, str] = {}
        self.nfts: dict[tuple[str, str], str] = {}  # (collection, token id) -> owner
        self.locked: dict[tuple[str, str], str] = {}  # nft -> listing or auction id
        self.listings: dict[str, Listing] = {}
        self.auctions: dict[str, Auction] = {}
        self.identities: dict[str, Identity] = {}
        self.soulbound: dict[str, tuple[str, str, str]] = {}  # token -> (subject, issuer, kind)
        self.actions: dict[str, Callable[[str], Effect | None]] = {
            name: getattr(self, f"_act_{name}") for name in ACTION_WEIGHTS
        }
        self._names = list(ACTION_WEIGHTS)
        self._weights = list(ACTION_WEIGHTS.values())

    # -- iteration ----------------------------------------------------------------------

    def batches(self) -> Iterator[Batch]:
        """The genesis block, then one batch per block, forever."""
        yield self.genesis()
        while True:
            yield self.next_block()

    def steps(self) -> Iterator[Step]:
        for batch in self.batches():
            yield from batch.steps

    # -- ids, addresses, amounts --------------------------------------------------------

    def _address(self) -> str:
        return base58(self.rng.getrandbits(256) | 1 << 255)

    def _hash(self) -> str:
        return f"0x{self.rng.getrandbits(256):064x}"

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def _usd(self, low: float, high: float) -> float:
        """A USD value spread evenly over orders of magnitude."""
        return float(low * (high / low) ** self.rng.random())

    def _worth(self, token: str, low: float, high: float) -> int:
        return max(1, units(token, self._usd(low, high) / TOKENS[token][1]))

    def _fee(self) -> int:
        return 21_000 * self.rng.randint(1, 50) * 10**9

    def _account(self, *exclude: str) -> str:
        """A random account other than `exclude` (there are always enough of them)."""
        while True:
            account = self.rng.choice(self.accounts)
            if account not in exclude:
                return account

    def _outsider(self, insiders: dict[str, Any]) -> str | None:
        """A random account that is not a key of `insiders`, or None when all are."""
        for _ in range(8):
            account = self.rng.choice(self.accounts)
            if account not in insiders:
                return account
        outsiders = [a for a in self.accounts if a not in insiders]
        return self.rng.choice(outsiders) if outsiders else None

    def _pick(self, table: dict[Any, Any]) -> Any:
        """A random key of a dict (dicts keep insertion order, so this is reproducible)."""
        return self.rng.choice(list(table)) if table else None

    # -- blocks -------------------------------------------------------------------------

    def genesis(self) -> Batch:
        """Block 0: the world's starting DAOs, pools, collections, identities and prices."""
        script = (["create_dao"] * 4 + ["join_dao"] * 24 + ["create_pool"] * len(GENESIS_POOLS)
                  + ["add_liquidity"] * 10 + ["oracle"] * len(FEEDS) + ["stake"] * 6
                  + ["create_collection"] * 3 + ["mint"] * 12 + ["register"] * 10
                  + ["create_proposal"] * 3)
        txs: list[tuple[Tx, list[Step]]] = []
        for name in script:
            done = self._transact(self.actions[name], may_fail=False)
            if done is not None:
                txs.append(done)
        return self._seal(txs, [], [])

    def next_block(self) -> Batch:
        """The next block, preceded now and then by a reorg that replaces recent blocks."""
        prelude: list[Step] = []
        # The genesis block and final blocks are never replaced.
        room = min(self.config.max_reorg_depth, self.head - max(self.finalized, 0))
        if room >= 1 and self.rng.random() < self.config.reorg_probability:
            prelude = self._reorg(self.rng.randint(1, room))
        self.ms += max(1, round(self.interval_ms * self.rng.uniform(0.9, 1.1)))
        height = self.head + 1
        changes = self._transitions(height)
        txs: list[tuple[Tx, list[Step]]] = []
        for action in self._due(height):
            done = self._transact(action, may_fail=False)
            if done is not None:
                txs.append(done)
        mean = self.config.txs_per_block
        for _ in range(self.rng.randint(mean - mean // 2, mean + mean // 2)):
            txs.append(self._random_tx())
        return self._seal(txs, prelude, changes)

    def _seal(self, txs: list[tuple[Tx, list[Step]]], prelude: list[Step],
              changes: list[Step]) -> Batch:
        height = self.head + 1
        parent = self.blocks[self.head].hash if self.head >= 0 else ZERO_HASH
        block = Block(height, self._hash(), parent, self.ms, self.rng.choice(self.validators),
                      [tx for tx, _ in txs])
        self.blocks[height] = block
        self.head = height
        steps = [*prelude, self._block_new(block), *changes]
        for tx, effects in txs:
            steps.append(("blocks", "tx.new", tx.data(height)))
            steps.extend(effects)
        if height - self.config.finality_depth > self.finalized:
            self.finalized = height - self.config.finality_depth
            final = self.blocks[self.finalized]
            steps.append(("blocks", "block.finalized", {"height": final.height,
                                                        "hash": final.hash}))
            for old in [h for h in self.blocks if h < self.finalized]:
                del self.blocks[old]
        return Batch(self.ms, steps)

    def _block_new(self, block: Block) -> Step:
        return ("blocks", "block.new", {
            "height": block.height, "hash": block.hash, "parent_hash": block.parent_hash,
            "timestamp": rfc3339(block.ms, self.start), "proposer": block.proposer,
            "tx_count": len(block.txs)})

    def _reorg(self, depth: int) -> list[Step]:
        """Replace the last `depth` blocks by a competing fork carrying the same transactions
        (their effects stand); the replacing blocks are announced again after the reorg."""
        fork = self.head - depth
        old_head = self.blocks[self.head].hash
        replaced: list[Block] = []
        parent = self.blocks[fork].hash
        for height in range(fork + 1, self.head + 1):
            old = self.blocks[height]
            block = Block(height, self._hash(), parent, old.ms,
                          self.rng.choice(self.validators), old.txs)
            replaced.append(block)
            parent = block.hash
        steps: list[Step] = [("blocks", "chain.reorg", {
            "fork_height": fork, "depth": depth, "old_head": old_head, "new_head": parent})]
        for block in replaced:
            self.blocks[block.height] = block
            steps.append(self._block_new(block))
            steps.extend(("blocks", "tx.new", tx.data(block.height)) for tx in block.txs)
        return steps

    def _transact(self, action: Callable[[str], Effect | None],
                  may_fail: bool = True) -> tuple[Tx, list[Step]] | None:
        tx_hash = self._hash()
        if may_fail and self.rng.random() < self.config.failure_rate:
            # A failed transaction changes nothing but the sender's balance (its fee).
            tx = Tx(tx_hash, self._account(), self.rng.choice(PROGRAMS), 0, self._fee(), False)
            return tx, []
        effect = action(tx_hash)
        if effect is None:
            return None
        sender, to, value, steps = effect
        return Tx(tx_hash, sender, to, value, self._fee()), steps

    def _random_tx(self) -> tuple[Tx, list[Step]]:
        for _ in range(4):
            (name,) = self.rng.choices(self._names, self._weights)
            done = self._transact(self.actions[name])
            if done is not None:
                return done
        done = self._transact(self._act_transfer, may_fail=False)
        assert done is not None
        return done

    # -- what happens on its own when a block's time comes --------------------------------

    def _transitions(self, height: int) -> list[Step]:
        """Proposals whose voting opened or closed by this block's time change status."""
        steps: list[Step] = []
        for proposal in list(self.proposals.values()):
            if proposal.status == "pending" and proposal.starts_ms <= self.ms:
                proposal.status = "active"
                steps.append(self._status(proposal))
            if proposal.status == "active" and proposal.ends_ms <= self.ms:
                yes = sum(w for choice, w in proposal.votes.values() if choice == "yes")
                no = sum(w for choice, w in proposal.votes.values() if choice == "no")
                proposal.status = "passed" if yes > no else "rejected"
                steps.append(self._status(proposal))
                steps.extend(self._decision(proposal))
                if proposal.status == "passed":
                    proposal.due_height = height + 1
                else:
                    del self.proposals[proposal.proposal_id]
            elif proposal.status == "passed" and proposal.due_height <= height:
                proposal.status = "queued"
                proposal.due_height = height + self.rng.randint(1, 3)
                steps.append(self._status(proposal))
        return steps

    def _due(self, height: int) -> list[Callable[[str], Effect | None]]:
        """Transactions that must happen in this block: executions, settlements, relays,
        and a last bid on auctions nobody has bid on yet."""
        due: list[Callable[[str], Effect | None]] = []
        for proposal in self.proposals.values():
            if proposal.status == "queued" and proposal.due_height <= height:
                due.append(partial(self._execute, proposal=proposal))
        for auction in self.auctions.values():
            if auction.ends_ms <= self.ms:
                due.append(partial(self._settle, auction=auction))
            elif not auction.bids and auction.ends_ms - self.ms <= 2 * self.interval_ms:
                due.append(partial(self._bid, auction=auction))
        for transfer in self.bridge.values():
            if transfer.due_height <= height:
                due.append(partial(self._relay, transfer=transfer))
        return due

    def _status(self, proposal: Proposal) -> Step:
        return ("governance", "proposal.status",
                {"proposal_id": proposal.proposal_id, "status": proposal.status})

    def _decision(self, proposal: Proposal) -> list[Step]:
        if proposal.dao_id is None or proposal.dao_id not in self.daos:
            return []
        outcome = {"passed": "approved", "rejected": "rejected"}.get(proposal.status, "deferred")
        return [("dao", "decision.recorded", {
            "dao_id": proposal.dao_id, "decision_id": self._id("dec"), "outcome": outcome,
            "proposal_id": proposal.proposal_id})]

    def _execute(self, tx: str, proposal: Proposal) -> Effect:
        success = self.rng.random() < 0.9
        proposal.status = "executed" if success else "failed"
        del self.proposals[proposal.proposal_id]
        return (self._account(), GOVERNANCE, 0, [
            ("governance", "proposal.executed",
             {"proposal_id": proposal.proposal_id, "tx_hash": tx, "success": success}),
            self._status(proposal)])

    def _settle(self, tx: str, auction: Auction) -> Effect:
        winner, amount = auction.bids[-1]
        collection, token_id = auction.nft
        del self.auctions[auction.auction_id]
        del self.locked[auction.nft]
        self.nfts[auction.nft] = winner
        return (winner, NFT_MARKET, 0, [
            ("nft", "auction.settled", {"auction_id": auction.auction_id, "winner": winner,
                                        "amount": str(amount), "collection": collection,
                                        "token_id": token_id}),
            ("nft", "nft.transferred", {"collection": collection, "token_id": token_id,
                                        "from": auction.seller, "to": winner})])

    def _relay(self, tx: str, transfer: BridgeTransfer) -> Effect:
        step = {"pending": ("confirmed", "failed"), "confirmed": ("completed", "completed"),
                "failed": ("refunded", "refunded")}[transfer.status]
        transfer.status = step[0] if self.rng.random() < 0.93 else step[1]
        if transfer.status in ("completed", "refunded"):
            del self.bridge[transfer.transfer_id]
        else:
            transfer.due_height += self.rng.randint(1, 4)
        return (self.relayer, BRIDGE, 0, [("liquidity", "bridge.transfer", transfer.data())])

    # -- actions: each returns an Effect, or None when there is nothing to act on ---------

    def _act_transfer(self, tx: str) -> Effect:
        sender = self._account()
        return sender, self._account(sender), self._worth(NATIVE, 0.1, 20_000), []

    # liquidity

    def _act_create_pool(self, tx: str) -> Effect | None:
        pairs = [p for p in (*GENESIS_POOLS, *LATER_POOLS)
                 if f"pool-{p[0].lower()}-{p[1].lower()}" not in self.pools]
        if not pairs:
            return None
        token_a, token_b, fee = pairs[0]
        pool = Pool(f"pool-{token_a.lower()}-{token_b.lower()}", token_a, token_b, fee)
        self.pools[pool.pool_id] = pool
        creator = self._account()
        steps: list[Step] = [("liquidity", "pool.created", {
            "pool_id": pool.pool_id, "token_a": token_a, "token_b": token_b, "fee_bps": fee})]
        steps.extend(self._deposit(pool, creator, units(token_a, 2e6 / TOKENS[token_a][1])))
        return creator, DEX, 0, steps

    def _deposit(self, pool: Pool, provider: str, amount_a: int) -> list[Step]:
        if pool.total_shares == 0:
            amount_b = units(pool.token_b, amount_a / 10 ** TOKENS[pool.token_a][0]
                             * TOKENS[pool.token_a][1] / TOKENS[pool.token_b][1])
            shares = isqrt(amount_a * amount_b)
        else:
            amount_b = amount_a * pool.reserve_b // pool.reserve_a + 1
            shares = pool.total_shares * amount_a // pool.reserve_a
        pool.reserve_a += amount_a
        pool.reserve_b += amount_b
        pool.total_shares += shares
        pool.shares[provider] = pool.shares.get(provider, 0) + shares
        return [("liquidity", "liquidity.added", {
            "pool_id": pool.pool_id, "provider": provider, "amount_a": str(amount_a),
            "amount_b": str(amount_b), "shares": str(shares)})]

    def _act_add_liquidity(self, tx: str) -> Effect | None:
        pool = self.pools.get(self._pick(self.pools))
        if pool is None:
            return None
        provider = self._account()
        return provider, DEX, 0, self._deposit(pool, provider,
                                               self._worth(pool.token_a, 500, 200_000))

    def _act_remove_liquidity(self, tx: str) -> Effect | None:
        pool = self.pools.get(self._pick(self.pools))
        if pool is None or len(pool.shares) < 2:
            return None  # the pool's creator keeps it alive
        provider = self.rng.choice(list(pool.shares)[1:])
        burn = pool.shares[provider] * self.rng.choice((1, 2, 4)) // 4
        amount_a = pool.reserve_a * burn // pool.total_shares
        amount_b = pool.reserve_b * burn // pool.total_shares
        if burn == 0 or amount_a == 0 or amount_b == 0:
            return None
        pool.shares[provider] -= burn
        if pool.shares[provider] == 0:
            del pool.shares[provider]
        pool.total_shares -= burn
        pool.reserve_a -= amount_a
        pool.reserve_b -= amount_b
        return provider, DEX, 0, [("liquidity", "liquidity.removed", {
            "pool_id": pool.pool_id, "provider": provider, "amount_a": str(amount_a),
            "amount_b": str(amount_b), "shares": str(burn)})]

    def _act_swap(self, tx: str) -> Effect | None:
        pool = self.pools.get(self._pick(self.pools))
        if pool is None:
            return None
        a_to_b = self.rng.random() < 0.5
        token_in, token_out = (pool.token_a, pool.token_b) if a_to_b else (
            pool.token_b, pool.token_a)
        reserve_in, reserve_out = (pool.reserve_a, pool.reserve_b) if a_to_b else (
            pool.reserve_b, pool.reserve_a)
        amount_in = self._worth(token_in, 5, 50_000)
        effective = amount_in * (10_000 - pool.fee_bps) // 10_000
        amount_out = reserve_out * effective // (reserve_in + effective)
        if amount_out == 0:
            return None
        if a_to_b:
            pool.reserve_a, pool.reserve_b = reserve_in + amount_in, reserve_out - amount_out
        else:
            pool.reserve_b, pool.reserve_a = reserve_in + amount_in, reserve_out - amount_out
        trader = self._account()
        return trader, DEX, 0, [("liquidity", "swap", {
            "pool_id": pool.pool_id, "trader": trader, "token_in": token_in,
            "token_out": token_out, "amount_in": str(amount_in), "amount_out": str(amount_out),
            "tx_hash": tx})]

    def _act_farm_reward(self, tx: str) -> Effect | None:
        pool = self.pools.get(self._pick(self.pools))
        if pool is None or not pool.shares:
            return None
        account = self.rng.choice(list(pool.shares))
        return account, FARMS, 0, [("liquidity", "farm.reward", {
            "farm_id": pool.pool_id.replace("pool-", "farm-", 1), "account": account,
            "token": NATIVE, "amount": str(self._worth(NATIVE, 0.5, 500))})]

    def _act_stake(self, tx: str) -> Effect:
        account, validator = self._account(), self.rng.choice(self.validators)
        amount = self._worth(NATIVE, 100, 100_000)
        self.stakes[(account, validator)] = self.stakes.get((account, validator), 0) + amount
        return account, STAKING, amount, [("liquidity", "stake", {
            "account": account, "validator": validator, "amount": str(amount)})]

    def _act_unstake(self, tx: str) -> Effect | None:
        key = self._pick(self.stakes)
        if key is None:
            return None
        account, validator = key
        staked = self.stakes[key]
        amount = staked if self.rng.random() < 0.3 else max(1, staked * self.rng.randint(1, 9)
                                                             // 10)
        if amount >= staked:
            del self.stakes[key]
        else:
            self.stakes[key] = staked - amount
        return account, STAKING, 0, [("liquidity", "unstake", {
            "account": account, "validator": validator, "amount": str(amount)})]

    def _act_bridge(self, tx: str) -> Effect | None:
        if len(self.bridge) >= MAX_OPEN_BRIDGE:
            return None
        remote_chain = self.rng.choice(REMOTE_CHAINS)
        remote = (f"0x{self.rng.getrandbits(160):040x}" if remote_chain != "solana"
                  else self._address())
        local = self._account()
        token = self.rng.choice(("USDC", "WETH", "OCOS", "WBTC"))
        outbound = self.rng.random() < 0.5
        transfer = BridgeTransfer(
            self._id("br"), "out" if outbound else "in", remote_chain, token,
            self._worth(token, 20, 100_000), local if outbound else remote,
            remote if outbound else local, due_height=self.head + 1 + self.rng.randint(1, 4))
        self.bridge[transfer.transfer_id] = transfer
        sender = local if outbound else self.relayer
        return sender, BRIDGE, 0, [("liquidity", "bridge.transfer", transfer.data())]

    def _act_oracle(self, tx: str) -> Effect:
        feed = self.rng.choice(list(FEEDS))
        price, round_ = self.prices.get(feed, (int(FEEDS[feed] * 10**FEED_DECIMALS), 0))
        if feed != "USDC/USD":
            price = max(1, int(price * (1 + self.rng.gauss(0, 0.004))))
        self.prices[feed] = (price, round_ + 1)
        return self.oracle, PRICE_FEEDS, 0, [("liquidity", "oracle.price", {
            "feed": feed, "price": str(price), "decimals": FEED_DECIMALS, "round": round_ + 1})]

    # governance and DAOs

    def _act_create_dao(self, tx: str) -> Effect | None:
        if len(self.daos) >= MAX_DAOS:
            return None
        creator = self._account()
        dao = Dao(self._id("dao"), creator, {creator: "owner"})
        self.daos[dao.dao_id] = dao
        name = f"{self.rng.choice(DAO_PREFIXES)} {self.rng.choice(DAO_WORDS)}"
        return creator, DAO_REGISTRY, 0, [("dao", "dao.created", {
            "dao_id": dao.dao_id, "name": name, "creator": creator})]

    def _act_join_dao(self, tx: str) -> Effect | None:
        dao = self.daos.get(self._pick(self.daos))
        if dao is None:
            return None
        member = self._outsider(dao.members)
        if member is None:
            return None
        role = "observer" if self.rng.random() < 0.15 else "member"
        dao.members[member] = role
        return member, DAO_REGISTRY, 0, [("dao", "member.joined", {
            "dao_id": dao.dao_id, "member": member, "role": role})]

    def _act_leave_dao(self, tx: str) -> Effect | None:
        dao = self.daos.get(self._pick(self.daos))
        if dao is None or len(dao.members) < 2:
            return None
        member = self.rng.choice(list(dao.members)[1:])  # the owner stays
        del dao.members[member]
        return member, DAO_REGISTRY, 0, [("dao", "member.left", {
            "dao_id": dao.dao_id, "member": member})]

    def _act_change_role(self, tx: str) -> Effect | None:
        dao = self.daos.get(self._pick(self.daos))
        if dao is None or len(dao.members) < 2:
            return None
        member = self.rng.choice(list(dao.members)[1:])
        old = dao.members[member]
        rung = ROLE_LADDER.index(old) + self.rng.choice((-1, 1))
        role = ROLE_LADDER[min(max(rung, 0), len(ROLE_LADDER) - 1)]
        if role == old:
            return None
        dao.members[member] = role
        return dao.creator, DAO_REGISTRY, 0, [("dao", "member.role_changed", {
            "dao_id": dao.dao_id, "member": member, "role": role, "old_role": old})]

    def _act_create_proposal(self, tx: str) -> Effect | None:
        if len(self.proposals) >= MAX_OPEN_PROPOSALS:
            return None
        dao = self.daos.get(self._pick(self.daos)) if self.rng.random() < 0.75 else None
        if dao is not None:
            voters = [m for m, role in dao.members.items() if role in VOTING_ROLES]
            proposer = self.rng.choice(voters)
        else:
            proposer = self._account()
        starts = self.ms + 2 * self.interval_ms
        ends = starts + self.rng.randint(8, 24) * self.interval_ms
        proposal = Proposal(self._id("prop"), dao.dao_id if dao else None, proposer, starts, ends)
        self.proposals[proposal.proposal_id] = proposal
        title = self.rng.choice(TITLES).format(self.rng.choice(TOPICS_OF_TITLES))
        return proposer, GOVERNANCE, 0, [
            ("governance", "proposal.created", {
                "proposal_id": proposal.proposal_id, "title": title, "proposer": proposer,
                "voting_starts": rfc3339(starts, self.start),
                "voting_ends": rfc3339(ends, self.start), "dao_id": proposal.dao_id}),
            self._status(proposal)]

    def _act_vote(self, tx: str) -> Effect | None:
        active = [p for p in self.proposals.values() if p.status == "active"]
        if not active:
            return None
        proposal = self.rng.choice(active)
        dao = self.daos.get(proposal.dao_id) if proposal.dao_id else None
        if dao is not None:
            voters = [m for m, role in dao.members.items()
                      if role in VOTING_ROLES and m not in proposal.votes]
            if not voters:
                return None
            voter = self.rng.choice(voters)
        else:
            voter = self._account()
            if voter in proposal.votes:
                return None
        choice = self.rng.choices(("yes", "no", "abstain"), (55, 35, 10))[0]
        weight = self._worth(NATIVE, 10, 250_000)
        proposal.votes[voter] = (choice, weight)
        return voter, GOVERNANCE, 0, [("governance", "vote.cast", {
            "proposal_id": proposal.proposal_id, "voter": voter, "choice": choice,
            "weight": str(weight)})]

    def _act_cancel_proposal(self, tx: str) -> Effect | None:
        open_ = [p for p in self.proposals.values() if p.status in ("pending", "active")]
        if not open_:
            return None
        proposal = self.rng.choice(open_)
        proposal.status = "cancelled"
        del self.proposals[proposal.proposal_id]
        return proposal.proposer, GOVERNANCE, 0, [self._status(proposal),
                                                  *self._decision(proposal)]

    # NFTs

    def _act_create_collection(self, tx: str) -> Effect | None:
        if len(self.collections) >= MAX_COLLECTIONS:
            return None
        name, symbol = COLLECTION_NAMES[len(self.collections)]
        address, creator = self._address(), self._account()
        self.collections[address] = 1
        self.collection_names[address] = symbol
        return creator, NFT_MARKET, 0, [("nft", "collection.created", {
            "collection": address, "name": name, "creator": creator, "symbol": symbol})]

    def _act_mint(self, tx: str) -> Effect | None:
        collection = self._pick(self.collections)
        if collection is None or len(self.nfts) >= MAX_NFTS:
            return None
        token_id = str(self.collections[collection])
        self.collections[collection] += 1
        owner = self._account()
        self.nfts[(collection, token_id)] = owner
        symbol = self.collection_names[collection].lower()
        uri = f"ipfs://bafy{symbol}{self.rng.getrandbits(120):030x}/{token_id}.json"
        return owner, collection, 0, [("nft", "nft.minted", {
            "collection": collection, "token_id": token_id, "owner": owner, "uri": uri})]

    def _free_nft(self) -> tuple[tuple[str, str], str] | None:
        nft = self._pick(self.nfts)
        if nft is None or nft in self.locked:
            return None
        return nft, self.nfts[nft]

    def _act_transfer_nft(self, tx: str) -> Effect | None:
        free = self._free_nft()
        if free is None:
            return None
        (collection, token_id), owner = free
        to = self._account(owner)
        self.nfts[(collection, token_id)] = to
        return owner, collection, 0, [("nft", "nft.transferred", {
            "collection": collection, "token_id": token_id, "from": owner, "to": to})]

    def _price(self) -> tuple[int, str]:
        currency = self.rng.choice((NATIVE, NATIVE, "USDC"))
        return self._worth(currency, 20, 20_000), currency

    def _act_list(self, tx: str) -> Effect | None:
        free = self._free_nft()
        if free is None:
            return None
        nft, seller = free
        price, currency = self._price()
        listing = Listing(self._id("lst"), nft, seller, price, currency)
        self.listings[listing.listing_id] = listing
        self.locked[nft] = listing.listing_id
        return seller, NFT_MARKET, 0, [("nft", "listing.created", {
            "listing_id": listing.listing_id, "collection": nft[0], "token_id": nft[1],
            "seller": seller, "price": str(price), "currency": currency})]

    def _act_cancel_listing(self, tx: str) -> Effect | None:
        listing = self.listings.pop(self._pick(self.listings), None)
        if listing is None:
            return None
        del self.locked[listing.nft]
        return listing.seller, NFT_MARKET, 0, [("nft", "listing.cancelled", {
            "listing_id": listing.listing_id, "collection": listing.nft[0],
            "token_id": listing.nft[1], "seller": listing.seller})]

    def _act_buy(self, tx: str) -> Effect | None:
        listing = self.listings.pop(self._pick(self.listings), None)
        if listing is None:
            return None
        del self.locked[listing.nft]
        buyer = self._account(listing.seller)
        self.nfts[listing.nft] = buyer
        collection, token_id = listing.nft
        return buyer, NFT_MARKET, 0, [
            ("nft", "sale", {"collection": collection, "token_id": token_id,
                             "seller": listing.seller, "buyer": buyer,
                             "price": str(listing.price), "currency": listing.currency,
                             "listing_id": listing.listing_id}),
            ("nft", "nft.transferred", {"collection": collection, "token_id": token_id,
                                        "from": listing.seller, "to": buyer})]

    def _act_start_auction(self, tx: str) -> Effect | None:
        free = self._free_nft()
        if free is None:
            return None
        nft, seller = free
        reserve, currency = self._price()
        ends = self.ms + self.rng.randint(6, 20) * self.interval_ms
        auction = Auction(self._id("auc"), nft, seller, reserve, currency, ends)
        self.auctions[auction.auction_id] = auction
        self.locked[nft] = auction.auction_id
        return seller, NFT_MARKET, 0, [("nft", "auction.started", {
            "auction_id": auction.auction_id, "collection": nft[0], "token_id": nft[1],
            "reserve": str(reserve), "ends_at": rfc3339(ends, self.start), "seller": seller,
            "currency": currency})]

    def _act_bid(self, tx: str) -> Effect | None:
        running = [a for a in self.auctions.values() if a.ends_ms > self.ms]
        return self._bid(tx, self.rng.choice(running)) if running else None

    def _bid(self, tx: str, auction: Auction) -> Effect:
        floor = auction.bids[-1][1] if auction.bids else auction.reserve
        amount = floor + max(1, floor * self.rng.randint(2, 20) // 100)
        bidder = self._account(auction.seller)
        auction.bids.append((bidder, amount))
        return bidder, NFT_MARKET, 0, [("nft", "auction.bid", {
            "auction_id": auction.auction_id, "bidder": bidder, "amount": str(amount),
            "collection": auction.nft[0], "token_id": auction.nft[1]})]

    # identity

    def _act_register(self, tx: str) -> Effect | None:
        subject = self._account()
        if subject in self.identities:
            return None
        identity = Identity(subject, provider=self.rng.choice(KYC_PROVIDERS))
        self.identities[subject] = identity
        return subject, DID_REGISTRY, 0, [
            ("identity", "identity.registered", {"subject": subject,
                                                 "did": f"did:ocos:{subject}"}),
            ("identity", "kyc.status", {"subject": subject, "status": "pending",
                                        "provider": identity.provider})]

    def _act_kyc(self, tx: str) -> Effect | None:
        identity = self.identities.get(self._pick(self.identities))
        if identity is None:
            return None
        if identity.kyc == "pending":
            identity.kyc = "verified" if self.rng.random() < 0.75 else "rejected"
        elif identity.kyc == "verified":
            identity.kyc = "expired"
        else:
            identity.kyc = "pending"
            identity.provider = self.rng.choice(KYC_PROVIDERS)
        return self.kyc_attestors[identity.provider], DID_REGISTRY, 0, [
            ("identity", "kyc.status", {"subject": identity.subject, "status": identity.kyc,
                                        "provider": identity.provider})]

    def _act_issue_soulbound(self, tx: str) -> Effect | None:
        subject = self._pick(self.identities)
        if subject is None or len(self.soulbound) >= MAX_SOULBOUND:
            return None
        kind = self.rng.choice(SOULBOUND_KINDS)
        if kind == "kyc" and self.identities[subject].kyc != "verified":
            return None
        token_id, issuer = self._id("sbt"), self.rng.choice(self.issuers)
        self.soulbound[token_id] = (subject, issuer, kind)
        return issuer, DID_REGISTRY, 0, [("identity", "soulbound.issued", {
            "subject": subject, "token_id": token_id, "issuer": issuer, "kind": kind})]

    def _act_revoke_soulbound(self, tx: str) -> Effect | None:
        token_id = self._pick(self.soulbound)
        if token_id is None:
            return None
        subject, issuer, kind = self.soulbound.pop(token_id)
        return issuer, DID_REGISTRY, 0, [("identity", "soulbound.revoked", {
            "subject": subject, "token_id": token_id, "issuer": issuer, "kind": kind,
            "reason": self.rng.choice(("expired", "issued in error", "membership ended"))})]

    def _act_reputation(self, tx: str) -> Effect | None:
        identity = self.identities.get(self._pick(self.identities))
        if identity is None:
            return None
        old = identity.reputation
        new = min(1000, max(0, old + self.rng.choice((-25, -10, -5, 5, 10, 15, 30))))
        if new == old:
            return None
        identity.reputation = new
        return self.rng.choice(self.issuers), DID_REGISTRY, 0, [("identity",
                                                                 "reputation.changed", {
            "subject": identity.subject, "old": old, "new": new,
            "reason": self.rng.choice(REPUTATION_REASONS)})]


class Simulator(Source):
    """Paces a `Chain` in real time: the genesis batch at once, then a block every
    `block_interval`, each published as one batch to the topics the hub has enabled."""

    name = "simulator"

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config

    async def run(self, hub: Hub) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        now = datetime.now(UTC)
        chain = Chain(self.config, start=now.replace(microsecond=now.microsecond // 1000 * 1000))
        for batch in chain.batches():
            delay = started + batch.ms / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            items = [(topic, kind, data, None) for topic, kind, data in batch.steps
                     if topic in hub.topics]
            if not items:
                continue
            try:
                await hub.publish_many(items)
            except HubError as exc:
                if hub.shutting_down:
                    return
                # One bad batch must not stop the demo; the tests keep batches valid.
                log.error("simulator: batch at %d ms refused: %s %s", batch.ms, exc.message,
                          exc.details)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return SimulatorConfig


@hookimpl
def ocos_sources(config: SimulatorConfig) -> list[Source]:
    return [Simulator(config)]
