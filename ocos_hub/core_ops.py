"""The core requests of protocol v1: subscribe, unsubscribe, ping, auth, publish.

They are `Operation`s like any extension's, so one dispatch path serves all requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from ocos_hub.errors import HubError
from ocos_hub.operations import Ack, Operation, Request
from ocos_hub.protocol import Close, now_rfc3339
from ocos_hub.router import Subscription

if TYPE_CHECKING:
    from ocos_hub.broker import Event
    from ocos_hub.session import Session

log = logging.getLogger("ocos_hub.subscribe")


class Since(BaseModel):
    """Where a resumed subscription starts: the last offset received, in its epoch."""

    model_config = ConfigDict(extra="forbid", strict=True)

    offset: Annotated[int, Field(ge=0)] = Field(description="The last offset received.")
    epoch: StrictStr = Field(description="The epoch of the ack that offset belongs to.")


class SubscribeRequest(Request):
    topic: StrictStr = Field(description="The topic to receive.")
    events: list[StrictStr] | None = Field(None, description="Keep only these event kinds.")
    filter: dict[str, Any] | None = Field(
        None, description="The topic's own filter object (its fields are in the topic's docs).")
    where: dict[str, Any] | None = Field(
        None, description="Generic predicates: a dotted path into the event (`data.amount`) to "
        "`{op: value}`, ops eq, ne, in, nin, gt, gte, lt, lte, exists, prefix (filters plugin).")
    since: Since | None = Field(
        None, description="Resume: every event after this offset, then live, no gap or "
        "duplicate.")
    rewind: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="Start with the last n retained events, then live.")

    @model_validator(mode="after")
    def _one_start(self) -> SubscribeRequest:
        if self.since is not None and self.rewind is not None:
            raise ValueError("give at most one of 'since' and 'rewind'")
        return self


class TopicRequest(Request):
    topic: StrictStr = Field(description="The topic.")


class AuthRequest(Request):
    """`method` plus that method's credential fields, which the core does not know."""

    model_config = ConfigDict(extra="allow", strict=True)

    method: StrictStr = Field(description="The auth method (`jwt`, `apikey`, ...).")


class PublishRequest(Request):
    topic: StrictStr = Field(description="The topic.")
    event: StrictStr = Field(description="The event kind.")
    data: dict[str, Any] = Field(description="The kind's data object, validated by its model.")
    key: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Idempotency key: a repeat within the dedup window publishes "
        "nothing.")


class Subscribe(Operation):
    name = "subscribe"
    request_model: ClassVar[type[Request]] = SubscribeRequest

    async def __call__(self, session: Session, request: SubscribeRequest) -> Ack:
        hub = session.hub
        topic = hub.topic(request.topic)
        session.require(f"subscribe:{topic.name}")
        if topic.name in session.subscriptions:
            raise HubError("already_subscribed", f"already subscribed to {topic.name!r}; "
                           "unsubscribe first to change the filter", {"topic": topic.name})
        if len(session.subscriptions) >= hub.config.server.max_subscriptions:
            raise HubError("too_many_subscriptions", "subscription limit reached",
                           {"max_subscriptions": hub.config.server.max_subscriptions})
        kinds = None
        if request.events is not None:
            unknown = sorted(set(request.events) - set(topic.kinds))
            if unknown:
                raise HubError("invalid_filter", f"unknown event kinds for {topic.name!r}: "
                               f"{', '.join(unknown)}", {"field": "events", "unknown": unknown,
                                                        "kinds": sorted(topic.kinds)})
            kinds = frozenset(request.events)
        where = None
        if request.where is not None:
            if hub.where is None:
                raise HubError("invalid_filter", "`where` needs the filters plugin, which this "
                               "hub does not enable", {"field": "where"})
            where = hub.where(request.where, [topic.kinds[kind] for kind in sorted(
                topic.kinds if kinds is None else kinds)])
        sub = Subscription(session, topic.name, kinds, topic.parse_filter(request.filter),
                           where, topic.visible)
        session.subscriptions[topic.name] = sub
        hub.router.add(sub)
        try:
            return await self._start(session, sub, request)
        except BaseException:
            session.subscriptions.pop(topic.name, None)
            hub.router.remove(sub)
            raise

    async def _start(self, session: Session, sub: Subscription, request: SubscribeRequest) -> Ack:
        broker = session.hub.broker
        limit = session.hub.config.history.max_replay
        fields: dict[str, Any] = {"topic": sub.topic}
        if request.since is not None:
            position = await broker.position(sub.topic)
            since = request.since
            if since.epoch != position.epoch or since.offset > position.offset:
                page_events, last = [], position.offset
                recovered = False
            else:
                after = max(since.offset, position.offset - limit)
                page = await broker.read(sub.topic, after, limit)
                # Events published while an async store read are in the backlog: when they
                # cut the page short, go live from its end, not from the topic's latest.
                page_events = page.events
                last = page.events[-1].offset if page.events else page.last_offset
                recovered = after == since.offset and page.first_offset <= since.offset + 1
            fields.update(offset=last, epoch=position.epoch, recovered=recovered)
        elif request.rewind is not None:
            page = await broker.read_last(sub.topic, min(request.rewind, limit))
            page_events, last = page.events, page.last_offset
            fields.update(offset=last, epoch=page.epoch)
        else:
            position = await broker.position(sub.topic)
            page_events, last = [], position.offset
            fields.update(offset=last, epoch=position.epoch)

        def replay_then_live() -> None:
            if len(page_events) > REPLAY_STEP:
                task = asyncio.get_running_loop().create_task(
                    _paced_replay(session, sub, page_events, last))
                _replays.add(task)
                task.add_done_callback(_replays.discard)
                return
            for event in page_events:
                if sub.accepts(event):
                    session.send(event.frame)
            session.hub.router.go_live(sub, last)

        return Ack(fields, then=replay_then_live)


# A replay of more events than this is paced: sent a step at a time, each once the client
# has taken most of the previous one. Sent at once, a long catch-up would pass the
# slow-consumer bound (a client resuming after 40,000 events would be closed, resume, and
# be closed again) and hold the loop for the encoding of every frame.
REPLAY_STEP = 500
_replays: set[asyncio.Task[None]] = set()  # strong references until each replay ends


async def _paced_replay(session: Session, sub: Subscription, events: list[Event],
                        last: int) -> None:
    """Send `events` that `sub` keeps, then go live after `last`. Live events wait in the
    subscription's backlog meanwhile. Stops when the connection closes or unsubscribes."""
    budget = session.hub.config.server.send_buffer_bytes // 2
    index = 0
    try:
        while not session.closing and session.subscriptions.get(sub.topic) is sub:
            if index == len(events):
                session.hub.router.go_live(sub, last)
                return
            stop, sent = min(len(events), index + REPLAY_STEP), 0
            while index < stop and sent < budget:
                event = events[index]
                index += 1
                if sub.accepts(event):
                    frame = event.frame
                    session.send(frame)
                    sent += len(frame)
            await asyncio.sleep(0)  # queued frames are written at the end of this tick
            while session.pending_bytes > budget and not session.closing:
                await asyncio.sleep(0.002)  # the client reads slower than we replay
    except Exception:
        log.exception("replay of %s to session %s failed", sub.topic, session.id)
        session.close_soon(Close.INTERNAL, "replay failed")


class Unsubscribe(Operation):
    name = "unsubscribe"
    request_model: ClassVar[type[Request]] = TopicRequest

    async def __call__(self, session: Session, request: TopicRequest) -> dict[str, Any]:
        sub = session.subscriptions.pop(request.topic, None)
        if sub is None:
            raise HubError("not_subscribed", f"not subscribed to {request.topic!r}",
                           {"topic": request.topic})
        session.hub.router.remove(sub)
        return {"topic": request.topic}


class Ping(Operation):
    name = "ping"

    async def __call__(self, session: Session, request: Request) -> Ack:
        return Ack({"ts": now_rfc3339()}, reply_type="pong")


class Auth(Operation):
    name = "auth"
    request_model: ClassVar[type[Request]] = AuthRequest

    async def __call__(self, session: Session, request: AuthRequest) -> dict[str, Any]:
        hub = session.hub
        method = hub.auth_methods.get(request.method)
        if method is None:
            raise HubError("invalid_message", f"auth: unknown method {request.method!r}",
                           {"field": "method", "methods": sorted(hub.auth_methods)})
        try:
            principal, fields = await method.sign_in(dict(request.model_extra or {}))
        except HubError as exc:
            await hub.authenticated(session, None, exc.code)
            raise
        session.set_principal(principal)
        await hub.authenticated(session, principal, None)
        return {**fields, "principal": principal.wire()}


class Publish(Operation):
    name = "publish"
    request_model: ClassVar[type[Request]] = PublishRequest

    async def __call__(self, session: Session, request: PublishRequest) -> dict[str, Any]:
        hub = session.hub
        hub.topic(request.topic)
        session.require(f"publish:{request.topic}")
        offset = await hub.publish(request.topic, request.event, request.data, request.key)
        return {"topic": request.topic, "offset": offset}


CORE_OPERATIONS: tuple[Operation, ...] = (Subscribe(), Unsubscribe(), Ping(), Auth(), Publish())
