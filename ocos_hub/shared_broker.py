"""The node side of a broker that many hub nodes share (Redis, NATS JetStream).

Each node reads the shared log and fans it out to its own connections. What every such
broker does the same way lives here: the reader's health and its reconnect loop with
backoff, waking reads that wait for the reader, and handing events to the local router,
closing (4008) the subscribers whose next event would skip offsets.
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from ocos_hub.broker import Broker, Deliver, Event
from ocos_hub.tasks import cancelling

if TYPE_CHECKING:
    from ocos_hub.hub import Hub

log = logging.getLogger("ocos_hub.shared_broker")

BEHIND = "this node fell behind the broker's retained history; reconnect and resume with `since`"
LOST = "the broker's history was lost; resubscribe with `since` (the epoch changed)"


class SharedBroker(Broker):
    """Base of brokers shared by several nodes. Subclasses implement `_read` (read the log
    until the connection is lost, calling `_connected` once reading) and set `where`."""

    backend: ClassVar[str] = "broker"
    # errors that mean the connection was lost (logged briefly, then reconnect)
    connection_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, where: str, reconnect_min: float, reconnect_max: float) -> None:
        self.where = where
        self.hub: Hub | None = None
        self._deliver: Deliver | None = None
        self._healthy = False
        self._closing = False
        self._advanced = asyncio.Event()
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._delay = reconnect_min

    @abstractmethod
    async def _read(self) -> None:
        """Read and fan out the shared log until the connection fails (raise)."""

    def _wake(self) -> None:
        """Let every read waiting for the reader look again."""
        self._advanced.set()
        self._advanced = asyncio.Event()

    def _set_health(self, healthy: bool) -> None:
        if healthy and not self._healthy:
            log.info("%s at %s reachable again; fanning out from where this node stopped",
                     self.backend, self.where)
        self._healthy = healthy
        self._wake()

    def _connected(self) -> None:
        """The reader is reading again: healthy, and the next outage backs off from scratch."""
        self._set_health(True)
        self._delay = self._reconnect_min

    async def _read_forever(self) -> None:
        while not self._closing:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from None
                if not isinstance(exc, self.connection_errors):
                    log.exception("the %s reader failed; restarting it", self.backend)
                elif self._healthy:
                    log.warning("lost %s at %s (%s); reconnecting", self.backend, self.where,
                                exc or type(exc).__name__)
            self._set_health(False)
            await asyncio.sleep(self._delay * (0.5 + random.random()))
            self._delay = min(self._reconnect_max, self._delay * 2)

    def _hand_over(self, events: list[Event], gaps: Sequence[str]) -> None:
        """Deliver what the reader read; topics in `gaps` skipped offsets on this node."""
        if gaps:
            log.warning("this node fell behind the retained history of %s; its subscribers "
                        "there resume with `since`", ", ".join(gaps))
            self.resync(gaps, BEHIND)
        if events and self._deliver is not None:
            try:
                self._deliver(events)
            except Exception:
                log.exception("delivering %d events failed", len(events))
        self._wake()

    def resync(self, topics: Sequence[str], message: str) -> None:
        if self.hub is not None:
            self.hub.resync(topics, message)
