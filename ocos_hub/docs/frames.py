"""The server frames of protocol v1 as pydantic models, for the generated documents only.

The hub builds its frames as plain dicts on the hot path (`ocos_hub.protocol`); these
models say the same in JSON Schema, so that the documents show every reply a client
can get. tests/docs checks them against frames a real hub sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ocos_hub.operations import RequestId
from ocos_hub.protocol import PROTOCOL


class PrincipalInfo(BaseModel):
    """Who the connection is, as an auth method established it."""

    id: str = Field(description="The principal's id (JWT `sub`, `apikey:<label>`, an address).")
    method: str = Field(description="The auth method that established it.")
    scopes: list[str] = Field(description="Scopes granted, sorted.")
    expires_at: str | None = Field(
        description="When the credential expires (RFC 3339 UTC); the socket closes with 4001 "
        "then unless a fresh `auth` arrives first.")


class RateInfo(BaseModel):
    """The connection's request allowance (the rate-limit plugin)."""

    messages_per_second: float = Field(description="Sustained requests per second.")
    burst: int = Field(description="Requests allowed at once.")


class Limits(BaseModel):
    """What the connection may send."""

    max_message_bytes: int = Field(description="Largest frame; larger ones close with 1009.")
    max_subscriptions: int = Field(description="Subscriptions held at once.")
    rate: RateInfo | None = Field(description="Null unless the rate-limit plugin is on.")


class Welcome(BaseModel):
    """The first frame on every connection."""

    type: Literal["welcome"] = Field(description="Always `welcome`.")
    session: str = Field(description="The connection's id, for support and logs.")
    protocol: Literal["ocos.v1"] = Field(description=f"Always `{PROTOCOL}`.")
    server: str = Field(description="`ocos-hub/<version>`.")
    heartbeat: float = Field(description="Seconds between the server's WebSocket pings.")
    topics: list[str] = Field(description="Topics this connection may subscribe to.")
    principal: PrincipalInfo | None = Field(description="Null when anonymous.")
    limits: Limits = Field(description="What the connection may send.")


class SubscribeAck(BaseModel):
    """A subscription is live; any replay follows this ack, then live events."""

    topic: str = Field(description="The topic subscribed to.")
    offset: int = Field(ge=0, description="The topic's offset the subscription starts after "
                        "(0 when it holds no event); live events have higher offsets.")
    epoch: str = Field(description="The topic's history lineage; keep it with the offset to "
                       "resume with `since`.")
    recovered: bool | None = Field(
        None, description="Only with `since`: true when every event after the offset was still "
        "retained in this epoch and follows; false when some are lost.")


class TopicAck(BaseModel):
    """The request took effect on this topic."""

    topic: str = Field(description="The topic.")


class AuthAck(BaseModel):
    """The connection's new principal."""

    principal: PrincipalInfo = Field(description="Who the connection now is.")


class PublishAck(BaseModel):
    """The event is published."""

    topic: str = Field(description="The topic.")
    offset: int = Field(ge=1, description="The event's offset (the first one's, for a "
                        "repeated `key`).")


class Pong(BaseModel):
    """The reply to `ping`."""

    type: Literal["pong"] = Field(description="Always `pong`.")
    id: RequestId | None = Field(description="The request's `id`, verbatim.")
    ts: str = Field(description="Server time, RFC 3339 UTC with milliseconds.")


class ErrorFrame(BaseModel):
    """A request's failure, or a notice not tied to a request (`id` null)."""

    type: Literal["error"] = Field(description="Always `error`.")
    id: RequestId | None = Field(description="The failed request's `id`; null for a notice.")
    code: str = Field(description="Machine-readable reason, snake_case (the protocol's table; "
                      "plugins may add codes).")
    message: str = Field(description="For humans.")
    details: Any = Field(None, description="Code-specific details (`field`, validation "
                         "errors, `retry_after`, ...).")


class ErrorBody(BaseModel):
    """The body of every HTTP error, the same as a socket `error` without `type` and `id`."""

    code: str = Field(description="Machine-readable reason, snake_case.")
    message: str = Field(description="For humans.")
    details: Any = Field(None, description="Code-specific details.")


class EventFrame(BaseModel):
    """An event as the socket and the REST backfill carry it."""

    type: Literal["event"] = Field(description="Always `event`.")
    topic: str = Field(description="The topic.")
    event: str = Field(description="The event kind, such as `block.new`.")
    offset: int = Field(ge=1, description="Position in the topic, strictly increasing.")
    ts: str = Field(description="When the hub accepted it, RFC 3339 UTC with milliseconds.")
    data: dict[str, Any] = Field(description="The kind's data object.")


class TopicSchema(BaseModel):
    """A topic as `Topic.schema()` describes it."""

    name: str = Field(description="The topic's name.")
    description: str = Field(description="What it carries.")
    events: dict[str, dict[str, Any]] = Field(
        description="Each event kind's data model, as JSON Schema.")
    filter: dict[str, Any] | None = Field(
        description="The `filter` object's JSON Schema; null when the topic has no filter.")
    examples: dict[str, dict[str, Any]] = Field(description="Example data per kind.")


class TopicList(BaseModel):
    """Topics with the schemas to read their events."""

    topics: list[TopicSchema] = Field(description="The topics.")


class HistoryAck(BaseModel):
    """A page of a topic's retained events (`ocos_hub.history.history_page`)."""

    topic: str = Field(description="The topic.")
    epoch: str = Field(description="The topic's history lineage.")
    first_offset: int = Field(description="Oldest retained offset; a `since` below "
                              "`first_offset - 1` means events were trimmed.")
    last_offset: int = Field(description="Newest offset.")
    events: list[EventFrame] = Field(description="Events, oldest first (those the principal "
                                     "may see).")
    next: dict[str, int] | None = Field(
        description="Cursor of the next page (`{since: n}` or `{before: n}`), null at the end.")


# The core ops' ack fields (their `Operation.reply_model`, kept here with the frames).
CORE_REPLIES: dict[str, type[BaseModel]] = {
    "subscribe": SubscribeAck,
    "unsubscribe": TopicAck,
    "auth": AuthAck,
    "publish": PublishAck,
}

CORE_SUMMARIES = {
    "subscribe": "Receive a topic's events, narrowed by `events`, the topic's `filter` and "
    "`where`; live from now, after `since: {offset, epoch}` (resume), or starting with the "
    "last `rewind` events. The ack comes first, then any replay, then live events, each once "
    "and in offset order.",
    "unsubscribe": "Stop receiving a topic's events.",
    "ping": "Ask for a `pong` (for clients that cannot see WebSocket pings, like browsers).",
    "auth": "Authenticate the connection in band, or replace its principal (token refresh); "
    "`method` names the auth method, the other fields are its credential.",
    "publish": "Publish one event; needs `publish:<topic>`. A repeated `key` within the "
    "dedup window publishes nothing and returns the first offset.",
}
