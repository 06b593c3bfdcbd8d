"""The `analytics` topic: figures derived by the hub itself from what flows through it.

Unlike the other topics nobody publishes `analytics` from outside: at startup the plugin
adds a listener to `hub.listeners` that observes `blocks`, `dao` and `governance` events,
and every `window` seconds it publishes

- `chain.stats`: the blocks of the window (throughput, block time, active addresses),
- `dao.metrics`: one event per known DAO (members, active proposals, participation),
- `hub.stats`: the hub's own connections, subscriptions and rates.

Numbers: analytics figures are measurements, not token amounts, so they are JSON numbers
rather than the decimal strings amounts use. Counts are integers; rates, averages and
shares are floats rounded to 6 decimal places. A figure that cannot be measured in a
window (no block time without two linked blocks) is `null`.

The computation lives in `ChainWindow`, `DaoTracker` and `HubRates`, plain classes that
tests drive by feeding events; `AnalyticsRunner` only wires them to a hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ocos_hub import Event, HubError, Topic, TopicFilter, hookimpl

if TYPE_CHECKING:
    from ocos_hub.hub import Hub

log = logging.getLogger("ocos_hub.analytics")

TOPIC = "analytics"
PRECISION = 6  # decimal places kept in float figures
OBSERVED = frozenset({"blocks", "dao", "governance"})
# Proposal statuses after which a proposal takes no more votes.
CLOSED = frozenset({"passed", "rejected", "queued", "executed", "failed", "cancelled"})


class AnalyticsConfig(BaseModel):
    """`[plugins.analytics]`."""

    model_config = ConfigDict(extra="forbid")

    window: float = Field(
        10.0, gt=0, description="Seconds between two publications; each figure covers the "
        "events observed since the previous one."
    )


# -- event models ----------------------------------------------------------------------


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainStats(_Figures):
    """Chain throughput over one window, measured from block timestamps."""

    window_s: float = Field(description="Length of the window in seconds (the `window` option).")
    tps: float | None = Field(
        description="Transactions per second: the transactions of the window's blocks whose "
        "parent timestamp is known, over the time those blocks span (each block covers the "
        "time since its parent). null when no such block was seen."
    )
    block_time_avg: float | None = Field(
        description="Mean seconds between a block's timestamp and its parent's, over the "
        "window's blocks; null when no block's parent timestamp is known."
    )
    tx_count: int = Field(description="Transactions in the window's canonical blocks.")
    active_addresses: int = Field(
        description="Distinct `from` and `to` addresses of the window's transactions."
    )


class DaoMetrics(_Figures):
    """One DAO's state at the end of a window."""

    dao_id: str
    members: int = Field(description="Current members.")
    proposals_active: int = Field(description="The DAO's proposals in voting (status active).")
    participation_rate: float = Field(
        description="Share (0 to 1) of current members who cast a vote on one of the DAO's "
        "proposals during the window."
    )


class HubStatsFigures(_Figures):
    """The hub's own load over one window."""

    connections: int = Field(description="Open WebSocket connections.")
    subscriptions: int = Field(description="Live subscriptions across all connections.")
    events_per_s: float = Field(description="Events published per second over the window.")
    deliveries_per_s: float = Field(description="Events queued to receivers per second.")
    dropped_connections: int = Field(
        description="Connections closed abnormally (not 1000/1001) during the window."
    )


METRICS = ("chain.stats", "dao.metrics", "hub.stats")
Metric = Literal["chain.stats", "dao.metrics", "hub.stats"]


class AnalyticsFilter(TopicFilter):
    """`metric` keeps those kinds; `dao_id` keeps `dao.metrics` of those DAOs only and leaves
    the other kinds alone (combine with `metric` to receive one DAO's metrics and nothing else).
    """

    metric: list[Metric] | None = None
    dao_id: list[str] | None = None

    def matches(self, event: Event) -> bool:
        if self.metric is not None and event.kind not in self.metric:
            return False
        if self.dao_id is not None and event.kind == "dao.metrics":
            return event.data.get("dao_id") in self.dao_id
        return True


topic = Topic(
    name=TOPIC,
    kinds={"chain.stats": ChainStats, "dao.metrics": DaoMetrics, "hub.stats": HubStatsFigures},
    filter_model=AnalyticsFilter,
    description="Figures derived by the hub every window: chain throughput from `blocks`, "
    "per-DAO metrics from `dao` and `governance`, and the hub's own load.",
    examples={
        "chain.stats": {"window_s": 10.0, "tps": 7.9, "block_time_avg": 1.0, "tx_count": 79,
                        "active_addresses": 61},
        "dao.metrics": {"dao_id": "dao-1", "members": 12, "proposals_active": 1,
                        "participation_rate": 0.25},
        "hub.stats": {"connections": 3, "subscriptions": 5, "events_per_s": 21.4,
                      "deliveries_per_s": 48.2, "dropped_connections": 0},
    },
)


# -- pure computation --------------------------------------------------------------------


def _figure(value: float) -> float:
    return round(value, PRECISION)


def _timestamp(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            return None
    return None


@dataclass
class _Block:
    hash: str
    parent_hash: str
    timestamp: datetime
    tx_count: int


class ChainWindow:
    """`chain.stats` from `blocks` events, one window at a time.

    Blocks are kept by height so that a reorg (or a block re-announced at a lower height)
    replaces the orphaned ones: a window counts the canonical chain as last announced.
    Block times come from parent links, so they stay right across window boundaries and
    reorgs; the timestamps of recent blocks are remembered for that.
    """

    def __init__(self, remember: int = 4096) -> None:
        self._remember = remember
        self._times: OrderedDict[str, datetime] = OrderedDict()  # block hash -> timestamp
        self._blocks: dict[int, _Block] = {}
        self._addresses: dict[int, set[str]] = {}

    def observe(self, event: Event) -> None:
        if event.topic != "blocks":
            return
        data = event.data
        if event.kind == "block.new":
            ts = _timestamp(data.get("timestamp"))
            height = data.get("height")
            if ts is None or not isinstance(height, int):
                return
            self._orphan_above(height - 1)
            self._blocks[height] = _Block(str(data.get("hash")), str(data.get("parent_hash")),
                                          ts, int(data.get("tx_count") or 0))
            self._times[str(data.get("hash"))] = ts
            self._times.move_to_end(str(data.get("hash")))
            while len(self._times) > self._remember:
                self._times.popitem(last=False)
        elif event.kind == "tx.new":
            height = data.get("block_height")
            if isinstance(height, int):
                seen = self._addresses.setdefault(height, set())
                for key in ("from", "to"):
                    if data.get(key):
                        seen.add(str(data[key]))
        elif event.kind == "chain.reorg":
            fork = data.get("fork_height")
            if isinstance(fork, int):
                self._orphan_above(fork)

    def _orphan_above(self, height: int) -> None:
        for stale in [h for h in self._blocks if h > height]:
            del self._blocks[stale]
        for stale in [h for h in self._addresses if h > height]:
            del self._addresses[stale]

    def close(self, window_s: float) -> dict[str, Any]:
        """The window's `chain.stats` data; starts the next window."""
        gaps: list[float] = []
        covered_txs = 0
        for block in self._blocks.values():
            parent = self._times.get(block.parent_hash)
            if parent is None:
                continue
            gaps.append((block.timestamp - parent).total_seconds())
            covered_txs += block.tx_count
        span = sum(gaps)
        addresses: set[str] = set()
        for height in self._blocks:
            addresses |= self._addresses.get(height, set())
        stats = {
            "window_s": float(window_s),
            "tps": _figure(covered_txs / span) if span > 0 else None,
            "block_time_avg": _figure(span / len(gaps)) if gaps else None,
            "tx_count": sum(block.tx_count for block in self._blocks.values()),
            "active_addresses": len(addresses),
        }
        self._blocks.clear()
        self._addresses.clear()
        return stats


@dataclass
class _Dao:
    members: set[str] = field(default_factory=set)
    voters: set[str] = field(default_factory=set)  # this window's


class DaoTracker:
    """`dao.metrics` from `dao` and `governance` events.

    A proposal belongs to a DAO when its `proposal.created` carries `dao_id`; proposals
    without one count for no DAO.
    """

    def __init__(self) -> None:
        self._daos: dict[str, _Dao] = {}
        self._proposal_dao: dict[str, str] = {}
        self._status: dict[str, str] = {}

    def _dao(self, dao_id: str) -> _Dao:
        return self._daos.setdefault(dao_id, _Dao())

    def observe(self, event: Event) -> None:
        data, kind = event.data, event.kind
        if event.topic == "dao":
            dao_id = data.get("dao_id")
            if not isinstance(dao_id, str):
                return
            dao = self._dao(dao_id)
            if kind == "dao.created":  # the creator is the first member
                dao.members.add(str(data.get("creator")))
            elif kind == "member.joined":
                dao.members.add(str(data.get("member")))
            elif kind == "member.left":
                dao.members.discard(str(data.get("member")))
        elif event.topic == "governance":
            proposal = data.get("proposal_id")
            if not isinstance(proposal, str):
                return
            if kind == "proposal.created":
                if isinstance(data.get("dao_id"), str):
                    self._proposal_dao[proposal] = data["dao_id"]
                    self._dao(data["dao_id"])
                self._status[proposal] = "pending"
            elif kind == "proposal.status":
                self._status[proposal] = str(data.get("status"))
            elif kind == "vote.cast" and proposal in self._proposal_dao:
                self._dao(self._proposal_dao[proposal]).voters.add(str(data.get("voter")))

    def close(self) -> list[dict[str, Any]]:
        """One `dao.metrics` data per known DAO, sorted by id; starts the next window."""
        active: dict[str, int] = {}
        for proposal, dao_id in self._proposal_dao.items():
            if self._status.get(proposal) == "active":
                active[dao_id] = active.get(dao_id, 0) + 1
        figures = []
        for dao_id in sorted(self._daos):
            dao = self._daos[dao_id]
            voting = len(dao.voters & dao.members)
            figures.append({
                "dao_id": dao_id,
                "members": len(dao.members),
                "proposals_active": active.get(dao_id, 0),
                "participation_rate": _figure(voting / len(dao.members)) if dao.members else 0.0,
            })
            dao.voters = set()
        # Closed proposals take no more votes: forget them so the tables stay bounded.
        for proposal in [p for p, status in self._status.items() if status in CLOSED]:
            del self._status[proposal]
            self._proposal_dao.pop(proposal, None)
        return figures


@dataclass(frozen=True)
class HubSample:
    """The hub's counters at one moment (`time` in seconds, any monotonic clock)."""

    time: float
    connections: int
    subscriptions: int
    published: int
    deliveries: int
    dropped: int


class HubRates:
    """`hub.stats` as differences between consecutive samples of the hub's counters."""

    def __init__(self, first: HubSample) -> None:
        self._last = first

    def close(self, sample: HubSample) -> dict[str, Any]:
        last, self._last = self._last, sample
        elapsed = sample.time - last.time
        return {
            "connections": sample.connections,
            "subscriptions": sample.subscriptions,
            "events_per_s": _figure((sample.published - last.published) / elapsed)
            if elapsed > 0 else 0.0,
            "deliveries_per_s": _figure((sample.deliveries - last.deliveries) / elapsed)
            if elapsed > 0 else 0.0,
            "dropped_connections": sample.dropped - last.dropped,
        }


class Analytics:
    """Everything the topic computes, fed with events; `close` yields one window's drafts."""

    def __init__(self) -> None:
        self.chain = ChainWindow()
        self.daos = DaoTracker()

    def observe(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.topic == "blocks":
                self.chain.observe(event)
            elif event.topic in OBSERVED:
                self.daos.observe(event)

    def close(self, window_s: float, *, chain: bool = True) -> list[tuple[str, dict[str, Any]]]:
        """(kind, data) for `chain.stats` (when `chain`) and each DAO's `dao.metrics`."""
        out: list[tuple[str, dict[str, Any]]] = []
        stats = self.chain.close(window_s)
        if chain:
            out.append(("chain.stats", stats))
        out.extend(("dao.metrics", figures) for figures in self.daos.close())
        return out


# -- wiring to a hub -----------------------------------------------------------------------


def sample_hub(hub: Hub, now: float) -> HubSample:
    return HubSample(now, len(hub.sessions), hub.router.count(), hub.stats.published,
                     hub.router.deliveries, hub.stats.dropped_connections)


class AnalyticsRunner:
    """One hub's analytics: the listener and the task publishing every window."""

    def __init__(self, hub: Hub, window: float) -> None:
        self.hub = hub
        self.window = window
        self.analytics = Analytics()
        self.task: asyncio.Task[None] | None = None

    def listen(self, events: Sequence[Event]) -> None:
        self.analytics.observe(events)

    def start(self) -> None:
        self.hub.listeners.append(self.listen)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.hub.listeners.remove(self.listen)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        rates = HubRates(sample_hub(self.hub, started))
        ticks = 0
        while True:
            ticks += 1
            # Sleep to a fixed schedule so windows do not drift by the publishing time.
            await asyncio.sleep(max(0.0, started + ticks * self.window - loop.time()))
            drafts = self.analytics.close(self.window, chain="blocks" in self.hub.topics)
            drafts.append(("hub.stats", rates.close(sample_hub(self.hub, loop.time()))))
            try:
                await self.hub.publish_many([(TOPIC, kind, data, None) for kind, data in drafts])
            except HubError as exc:
                if self.hub.shutting_down:
                    return
                log.warning("analytics: could not publish: %s", exc.message)


_runners: weakref.WeakKeyDictionary[Hub, AnalyticsRunner] = weakref.WeakKeyDictionary()


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return AnalyticsConfig


@hookimpl
def ocos_topics(config: AnalyticsConfig) -> list[Topic]:
    return [topic]


@hookimpl
def ocos_startup(hub: Hub, config: AnalyticsConfig) -> None:
    runner = AnalyticsRunner(hub, config.window)
    _runners[hub] = runner
    runner.start()


@hookimpl
def ocos_shutdown(hub: Hub, config: AnalyticsConfig) -> Any:
    runner = _runners.pop(hub, None)
    return runner.stop() if runner is not None else None
