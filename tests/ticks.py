"""A minimal topic plugin for the core's tests, registered like any plugin object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ocos_hub import Event, Principal, Topic, TopicFilter, hookimpl


class Tick(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    n: int
    owner: str = "anyone"


class Tock(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    n: int


class TicksFilter(TopicFilter):
    min_n: int | None = None
    owner: list[str] | None = None

    def matches(self, event: Event) -> bool:
        if self.min_n is not None and event.data["n"] < self.min_n:
            return False
        return self.owner is None or event.data.get("owner") in self.owner


def mine_only(principal: Principal | None, event: Event) -> bool:
    return principal is not None and event.data.get("owner") in (principal.id, None)


class TicksPlugin:
    @hookimpl
    def ocos_topics(self, config: Any) -> list[Topic]:
        return [
            Topic("ticks", {"tick": Tick, "tock": Tock}, TicksFilter, "numbers that grow",
                  {"tick": {"n": 1}, "tock": {"n": 2}}),
            Topic("private", {"tick": Tick}, TicksFilter, "ticks seen by their owner",
                  visible=mine_only),
        ]


def tick(n: int, **extra: Any) -> tuple[str, str, dict[str, Any]]:
    return ("ticks", "tick", {"n": n, **extra})
