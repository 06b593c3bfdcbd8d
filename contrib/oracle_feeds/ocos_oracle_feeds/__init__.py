"""`oracle-feeds`: an example third-party topic plugin for OCOS Hub.

It declares one topic, `oracle-feeds`, with one event kind, `price.update`, a filter
(`feed`, `source`) and a config section `[plugins.oracle-feeds]` that can restrict which
feeds the hub accepts. Everything it imports from the hub is public API (`ocos_hub`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ocos_hub import Event, Topic, TopicFilter, hookimpl

TOPIC = "oracle-feeds"

Feed = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]+/[A-Z0-9]+$", max_length=64)]


class OracleFeedsConfig(BaseModel):
    """`[plugins.oracle-feeds]`: validated by the hub at startup, passed to every hook."""

    model_config = ConfigDict(extra="forbid")

    feeds: list[Feed] = Field(
        default_factory=list,
        description="Feeds this hub accepts (`BASE/QUOTE`); empty accepts every feed.",
    )


class PriceUpdate(BaseModel):
    """A new answer of one price feed."""

    # Refuse unknown fields and loose types: publishers learn about mistakes at once.
    model_config = ConfigDict(extra="forbid", strict=True)

    feed: Feed = Field(description="Feed, as BASE/QUOTE (`OCOS/USD`).")
    price: Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,77})$")] = Field(
        description="The answer in units of 10^-decimals, as a decimal string (amounts stay "
        "strings so that 256-bit values survive JSON)."
    )
    decimals: Annotated[int, Field(ge=0, le=77)] = Field(description="Decimal places of price.")
    round: Annotated[int, Field(ge=0)] = Field(description="Round number, growing per feed.")
    source: str = Field(description="Who reported it (`chainlink`, `pyth`, an address).")


EXAMPLE: dict[str, Any] = {
    "feed": "OCOS/USD",
    "price": "123450000",
    "decimals": 8,
    "round": 42,
    "source": "chainlink",
}


class OracleFeedsFilter(TopicFilter):
    """Subscribers narrow the topic with `{"feed": [...], "source": "..."}`."""

    feed: list[Feed] | None = Field(None, min_length=1, description="Any of these feeds.")
    source: str | None = Field(None, description="Only updates from this source.")

    def matches(self, event: Event) -> bool:
        if self.feed is not None and event.data["feed"] not in self.feed:
            return False
        return self.source is None or event.data["source"] == self.source


def price_model(feeds: list[str]) -> type[PriceUpdate]:
    """The `price.update` model for a config: restricted to its feeds when it lists any."""
    if not feeds:
        return PriceUpdate
    allowed = frozenset(feeds)

    class AllowedPriceUpdate(PriceUpdate):
        @field_validator("feed")
        @classmethod
        def _allowed(cls, value: str) -> str:
            if value not in allowed:
                raise ValueError(f"this hub accepts only the feeds {sorted(allowed)}")
            return value

    AllowedPriceUpdate.__name__ = PriceUpdate.__name__
    return AllowedPriceUpdate


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return OracleFeedsConfig


@hookimpl
def ocos_topics(config: OracleFeedsConfig) -> list[Topic]:
    return [
        Topic(
            name=TOPIC,
            kinds={"price.update": price_model(config.feeds)},
            filter_model=OracleFeedsFilter,
            description="Price updates from oracle feeds (an example third-party topic).",
            examples={"price.update": EXAMPLE},
        )
    ]
