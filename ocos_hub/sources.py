"""Sources: background producers (the chain simulator, a node's event bus, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocos_hub.hub import Hub


class Source(ABC):
    """A long-running producer. `run` is started as a task after the broker is up and
    cancelled at shutdown, before connections are closed, so nothing it published is lost."""

    name: str = ""

    @abstractmethod
    async def run(self, hub: Hub) -> None:
        """Produce events with `await hub.publish(...)` until cancelled."""
