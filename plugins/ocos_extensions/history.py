"""The `history` extension: two socket requests for clients that look before they listen.

`history` ({topic, since | before, limit}) pages through a topic's retained events with
the same answer as the REST backfill (`ocos_hub.history.history_page`): `events` oldest
first, `epoch`, the retained range, and `next`, the cursor of the following page (null at
the end). It needs `subscribe:<topic>`, and each event passes the topic's per-event
visibility check, as live events do. `topics` lists the topics this connection may
subscribe to, with their event and filter schemas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)

from ocos_hub import Operation, Request, hookimpl
from ocos_hub.docs.frames import HistoryAck, TopicList
from ocos_hub.history import history_page

if TYPE_CHECKING:
    from ocos_hub.session import Session


class HistoryConfig(BaseModel):
    """`[plugins.history]`: how large one page of the `history` op may be."""

    model_config = ConfigDict(extra="forbid")

    default_limit: int = Field(
        100, ge=1, description="Events per page when a request gives no `limit`.")
    max_limit: int = Field(
        1000, ge=1, description="Most events per page; a larger `limit` is lowered to it "
        "(the `next` cursor continues from there).")

    @field_validator("max_limit")
    @classmethod
    def _at_least_default(cls, max_limit: int, info: ValidationInfo) -> int:
        default = info.data.get("default_limit")
        if default is not None and default > max_limit:
            raise ValueError(f"must be at least default_limit ({default})")
        return max_limit


class HistoryRequest(Request):
    topic: StrictStr = Field(description="The topic to read.")
    since: Annotated[StrictInt, Field(ge=0)] | None = Field(
        None, description="Events after this offset, paging forward.")
    before: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="Events before this offset, paging back.")
    limit: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="Most events in the page (lowered to the plugin's `max_limit`).")

    @field_validator("before")
    @classmethod
    def _one_direction(cls, before: int | None, info: ValidationInfo) -> int | None:
        if before is not None and info.data.get("since") is not None:
            raise ValueError("give at most one of 'since' and 'before'")
        return before


class History(Operation):
    """A page of a topic's retained events; checks run in `subscribe`'s order."""

    name = "history"
    request_model: ClassVar[type[Request]] = HistoryRequest
    reply_model = HistoryAck

    def __init__(self, config: HistoryConfig) -> None:
        self.config = config

    async def __call__(self, session: Session, request: HistoryRequest) -> dict[str, Any]:
        hub = session.hub
        topic = hub.topic(request.topic)
        session.require(f"subscribe:{topic.name}")
        limit = min(request.limit or self.config.default_limit, self.config.max_limit)
        return await history_page(hub.broker, topic, session.principal, since=request.since,
                                  before=request.before, limit=limit)


class Topics(Operation):
    """What this connection may subscribe to, with the schemas to read its events."""

    name = "topics"
    reply_model = TopicList

    async def __call__(self, session: Session, request: Request) -> dict[str, Any]:
        hub = session.hub
        return {"topics": [hub.topics[name].schema()
                           for name in hub.visible_topics(session.scopes)]}


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return HistoryConfig


@hookimpl
def ocos_operations(config: HistoryConfig) -> list[Operation]:
    return [History(config), Topics()]
