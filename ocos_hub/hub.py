"""The hub: what the enabled plugins provide, wired to the broker, router and sessions.

One `Hub` per app. Plugins receive it in `ocos_startup` and publish through it; the
socket and HTTP handlers reach it with `request.app[HUB]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from ocos_hub.appkeys import PRINCIPAL
from ocos_hub.auth import API_KEY, TOKEN, AuthMethod, Principal, scope_allows
from ocos_hub.broker import Broker, Event, HistoryStore, MemoryBroker, MemoryHistory
from ocos_hub.config import ConfigError, HubConfig
from ocos_hub.core_ops import CORE_OPERATIONS
from ocos_hub.dedup import DedupWindow
from ocos_hub.errors import HubError, first_field, validation_details
from ocos_hub.hookspecs import WhereCompiler
from ocos_hub.middleware import Middleware
from ocos_hub.operations import Ack, Operation
from ocos_hub.outbox import HARD_LIMIT_FACTOR
from ocos_hub.plugins import PluginHost
from ocos_hub.protocol import PING_FRAME, Close, Deflate
from ocos_hub.router import Router
from ocos_hub.sources import Source
from ocos_hub.topics import Topic

if TYPE_CHECKING:
    from ocos_hub.session import Session

log = logging.getLogger("ocos_hub")

# (topic, event kind, data, idempotency key or None)
Publication = tuple[str, str, Any, "str | None"]


@dataclass
class HubStats:
    """The hub's own counters (`hub.stats` in analytics, /metrics)."""

    published: int = 0
    connections_total: int = 0
    slow_consumers: int = 0
    dropped_connections: int = 0
    # HTTP refusals by error code (handshakes included), counted where every one passes
    http_refusals: Counter[str] = field(default_factory=Counter)


class Hub:
    """Everything one running hub holds."""

    def __init__(self, config: HubConfig, plugins: PluginHost) -> None:
        self.config = config
        self.plugins = plugins
        self.anonymous_scopes = frozenset(config.access.anonymous)
        self.router = Router(max_backlog=config.history.max_replay,
                             lag_limit=config.server.send_buffer_bytes * HARD_LIMIT_FACTOR)
        self.sessions: set[Session] = set()
        self.stats = HubStats()
        self.dedup = DedupWindow(config.publish.dedup_window, config.publish.dedup_max_keys)
        self.listeners: list[Callable[[Sequence[Event]], None]] = []
        self.welcome_limits: dict[str, Any] = {"rate": None}
        self.shutting_down = False
        # permessage-deflate, off unless a plugin calls `enable_compression`
        self.compression: Deflate | None = None

        self.topics: dict[str, Topic] = {}
        for name, topic in plugins.collect("ocos_topics"):
            if topic.name in self.topics:
                raise ConfigError(f"plugin {name!r}: topic {topic.name!r} is already defined")
            self.topics[topic.name] = topic
        self.auth_methods: dict[str, AuthMethod] = {}
        for name, method in plugins.collect("ocos_auth_methods"):
            if method.name in self.auth_methods:
                raise ConfigError(f"plugin {name!r}: auth method {method.name!r} is defined twice")
            self.auth_methods[method.name] = method
        ranked = list(enumerate(plugins.collect("ocos_middleware")))
        ranked.sort(key=lambda item: (item[1][1].order, item[0]))
        self.middleware: list[Middleware] = [mw for _, (_, mw) in ranked]
        self.operations: dict[str, Operation] = {op.name: op for op in CORE_OPERATIONS}
        for name, op in plugins.collect("ocos_operations"):
            if op.name in self.operations:
                raise ConfigError(f"plugin {name!r}: request type {op.name!r} is already taken")
            self.operations[op.name] = op
        self.where: WhereCompiler | None = plugins.single(
            "ocos_where", "`where` compiler")
        self.sources: list[Source] = [source for _, source in plugins.collect("ocos_sources")]
        self.routes: list[web.AbstractRouteDef] = [r for _, r in plugins.collect("ocos_routes")]
        broker: Broker | None = plugins.single("ocos_broker", "broker", hub_config=config)
        history: HistoryStore | None = plugins.single(
            "ocos_history_store", "history store", hub_config=config)
        if broker is not None and history is not None:
            raise ConfigError(f"{config.source}: [plugins] enabled: a broker plugin keeps its "
                              "own history; disable the history store plugin")
        self.broker: Broker = broker or MemoryBroker(
            history or MemoryHistory(config.history.max_events, config.history.max_age))
        self._stages = {
            stage: [mw for mw in self.middleware if mw.overrides(stage)]
            for stage in ("on_handshake", "on_admit", "on_http", "on_connect", "on_request",
                          "on_reply", "on_auth", "on_published", "on_disconnect")
        }
        self._tasks: list[asyncio.Task[None]] = []

    def enable_compression(self, settings: Deflate) -> None:
        """Negotiate permessage-deflate with clients that offer it, and fan out shared
        compressed frames to them (the compression plugin calls this at startup)."""
        self.compression = settings
        self.router.deflate = settings

    def stage(self, name: str) -> list[Middleware]:
        """The middleware implementing one stage, in chain order."""
        return self._stages[name]

    # -- lifecycle ----------------------------------------------------------------------

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: start the broker, plugins and sources; stop them after."""
        await self.broker.start(self._deliver)
        try:
            for _, pending in self.plugins.each("ocos_startup", hub=self):
                await pending
            loop = asyncio.get_running_loop()
            self._tasks.append(loop.create_task(self._heartbeat()))
            self._tasks.extend(loop.create_task(self._run_source(s)) for s in self.sources)
            yield
        finally:
            await self.stop_tasks()
            for _, pending in self.plugins.each("ocos_shutdown", hub=self):
                await pending
            await self.broker.close()

    async def _run_source(self, source: Source) -> None:
        try:
            await source.run(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("source %r stopped with an error", source.name)

    async def stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def shutdown(self, app: web.Application) -> None:
        """aiohttp on_shutdown: stop producing, let queues drain, close every socket 1001."""
        self.shutting_down = True
        await self.stop_tasks()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.server.shutdown_grace
        while loop.time() < deadline and any(s.pending_bytes for s in self.sessions):
            await asyncio.sleep(0.05)
        await asyncio.gather(*(s.close(Close.SHUTDOWN, "server shutdown")
                               for s in list(self.sessions)), return_exceptions=True)

    async def _heartbeat(self) -> None:
        """One timer for every connection: ping, and drop those silent for two intervals."""
        interval = self.config.server.heartbeat
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for session in list(self.sessions):
                if now - session.last_seen > 2 * interval:
                    session.close_soon(Close.POLICY, "no answer to heartbeat")
                else:
                    session.write_control(PING_FRAME)

    # -- events -------------------------------------------------------------------------

    def _deliver(self, events: Sequence[Event]) -> None:
        observers = self._stages["on_published"]
        if observers:
            # Per-topic counts for the observers: one router call per topic of the batch
            # (the router groups by topic itself, so the deliveries are the same).
            by_topic: dict[str, list[Event]] = {}
            for event in events:
                by_topic.setdefault(event.topic, []).append(event)
            deliveries = {topic: self.router.deliver(batch) for topic, batch in by_topic.items()}
        else:
            self.router.deliver(events)
        self.stats.published += len(events)
        for listener in self.listeners:
            listener(events)
        if observers:
            batch = list(events)
            for mw in observers:
                mw.on_published(batch, deliveries)

    def topic(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is None:
            raise HubError("unknown_topic", f"no topic {name!r}",
                           {"topic": name, "topics": sorted(self.topics)})
        return topic

    async def publish(self, topic: str, event: str, data: Any, key: str | None = None) -> int:
        """Validate and publish one event; return its offset (the first one for a repeated key)."""
        return (await self.publish_many([(topic, event, data, key)]))[0]

    async def publish_many(self, items: Sequence[Publication]) -> list[int]:
        """Validate every item, then publish those whose key is new, in order.

        Nothing is published when any item is invalid. Returns one offset per item.
        """
        drafts: list[tuple[str, str, dict[str, Any]]] = []
        slots: list[int | tuple[str, str]] = []  # an offset, or the key to read it from
        fresh: dict[tuple[str, str], int] = {}
        for index, (topic_name, kind, data, key) in enumerate(items):
            try:
                clean = self.topic(topic_name).validate_data(kind, data)
            except HubError as exc:
                if len(items) > 1:
                    exc.message = f"events[{index}]: {exc.message}"
                    exc.details = {"index": index, "errors": exc.details}
                raise
            if key is not None:
                seen = self.dedup.get(topic_name, key)
                if seen is not None:
                    slots.append(seen)
                    continue
                if (topic_name, key) in fresh:
                    slots.append((topic_name, key))
                    continue
                fresh[(topic_name, key)] = len(drafts)
                slots.append((topic_name, key))
            else:
                slots.append(-1 - len(drafts))
            drafts.append((topic_name, kind, clean))
        if self.shutting_down:
            raise HubError("unavailable", "the hub is shutting down")
        events = await self.broker.publish(drafts) if drafts else []
        offsets = []
        for slot in slots:
            if isinstance(slot, tuple):
                offset = events[fresh[slot]].offset
                self.dedup.remember(slot[0], slot[1], offset)
            elif slot < 0:
                offset = events[-1 - slot].offset
            else:
                offset = slot
            offsets.append(offset)
        return offsets

    # -- requests and credentials ---------------------------------------------------------

    async def dispatch(self, session: Session, op_name: str, request: dict[str, Any]) -> Ack:
        """Run the middleware chain and the operation for one parsed request."""
        op = self.operations.get(op_name)
        if op is None:
            raise HubError("unknown_type", f"unknown request type {op_name!r}",
                           {"types": sorted(self.operations)})
        for mw in self._stages["on_request"]:
            await mw.on_request(session, request)
        try:
            parsed = op.request_model.model_validate(request)
        except ValidationError as exc:
            field = first_field(exc)
            problem = exc.errors()[0]
            text = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
            raise HubError("invalid_message", f"{op_name}: field {field!r}: {text}",
                           {"field": field, "errors": validation_details(exc)}) from None
        scope = op.required_scope(parsed)
        if scope is not None:
            session.require(scope)
        result = await op(session, parsed)
        return result if isinstance(result, Ack) else Ack(result)

    async def replied(self, session: Session, request: dict[str, Any] | None,
                      reply: dict[str, Any]) -> None:
        for mw in self._stages["on_reply"]:
            await mw.on_reply(session, request, reply)

    async def authenticated(self, session: Session | None, principal: Principal | None,
                            error: str | None, request: web.Request | None = None) -> None:
        """Tell the middleware a credential was checked (`error`: the refusal's code).

        `request` defaults to the connection's handshake request for in-band `auth`.
        """
        if request is None and session is not None:
            request = session.request
        for mw in self._stages["on_auth"]:
            await mw.on_auth(session, principal, error, request)

    async def identify(self, request: web.Request) -> Principal | None:
        """The principal behind an HTTP request's credentials, or None when it has none.

        Bearer tokens and API keys come from headers, or `?token=` / `?api_key=` for
        browsers. Credentials nobody accepts are refused, never treated as anonymous.
        """
        credentials = []
        authorization = request.headers.get("Authorization", "")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise HubError("invalid_credentials", "Authorization must be 'Bearer <token>'")
            credentials.append((TOKEN, value.strip()))
        if "X-API-Key" in request.headers:
            credentials.append((API_KEY, request.headers["X-API-Key"].strip()))
        if "token" in request.query:
            credentials.append((TOKEN, request.query["token"]))
        if "api_key" in request.query:
            credentials.append((API_KEY, request.query["api_key"]))
        if not credentials:
            if self.config.access.require_auth:
                raise HubError("unauthenticated", "this hub requires credentials")
            request[PRINCIPAL] = None
            return None
        kind, value = credentials[0]
        try:
            for method in self.auth_methods.values():
                principal = await method.from_handshake(kind, value)
                if principal is not None:
                    request[PRINCIPAL] = principal
                    await self.authenticated(None, principal, None, request)
                    return principal
            raise HubError("invalid_credentials", f"no enabled auth method accepts this {kind}")
        except HubError as exc:
            await self.authenticated(None, None, exc.code, request)
            raise

    def revoke(self, predicate: Callable[[Principal], bool], reason: str = "access revoked") -> int:
        """Close (4003) every connection whose principal matches; auth plugins call this when
        a credential is revoked. Returns how many were closed."""
        doomed = [s for s in self.sessions if s.principal is not None and predicate(s.principal)]
        for session in doomed:
            session.close_soon(Close.REVOKED, reason)
        return len(doomed)

    def resync(self, topics: Sequence[str], message: str) -> int:
        """Close (4008, as a slow consumer) the connections subscribed to `topics`: their
        next live event would skip offsets, so they resume with `since` and learn
        `recovered: false` instead. Shared brokers call this when a node fell behind."""
        wanted = set(topics)
        doomed = [s for s in self.sessions if wanted.intersection(s.subscriptions)]
        for session in doomed:
            session.notice("slow_consumer", message)
            session.close_soon(Close.SLOW_CONSUMER, "behind the broker")
        return len(doomed)

    def visible_topics(self, scopes: frozenset[str]) -> list[str]:
        return [name for name in self.topics if scope_allows(scopes, f"subscribe:{name}")]
