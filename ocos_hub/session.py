"""One WebSocket connection: its principal, subscriptions and bounded outgoing queue.

Frames are queued as bytes, or owed by the feeds of the connection's plain subscriptions,
and written by the outbox (`ocos_hub.outbox`): a burst of events costs one syscall per
connection while a lone event still leaves at once. A connection whose backlog (queued,
owed, and in the transport) passes `send_buffer_bytes` is a slow consumer: it gets
`slow_consumer` and close 4008, and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ocos_hub import protocol
from ocos_hub.auth import Principal, scope_allows
from ocos_hub.errors import HubError
from ocos_hub.operations import Ack
from ocos_hub.outbox import HARD_LIMIT_FACTOR, outbox_of
from ocos_hub.protocol import Close

if TYPE_CHECKING:
    from ocos_hub.hub import Hub
    from ocos_hub.outbox import Feed
    from ocos_hub.router import Subscription

log = logging.getLogger("ocos_hub.session")

# How long a closing handshake may take before the transport is dropped.
CLOSE_TIMEOUT = 5.0
# A credential's `token_expired` notice goes out this long before expiry (or halfway there).
EXPIRY_NOTICE = 60.0


def _bad_id(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return False
    return not (isinstance(value, str) and len(value) <= 64)


class Session:
    """The server side of one client connection.

    Slotted: a hub holds tens of thousands of these. Plugins keep their own per-connection
    state in dicts keyed by the session (weak references work too), not as attributes.
    """

    __slots__ = (
        "__weakref__", "hub", "ws", "request", "id", "remote", "principal", "subscriptions",
        "close_code", "last_seen", "_transport", "_loop", "_outbox", "_limit",
        "_out", "_out_size", "_flush_scheduled", "_closing", "_expiry", "_close_task",
        "_held", "_held_size", "deflate", "feeds",
    )

    def __init__(
        self, hub: Hub, ws: web.WebSocketResponse, request: web.Request,
        principal: Principal | None,
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.request = request
        self.id = secrets.token_hex(8)
        self.remote = request.remote or ""
        self.principal = principal
        # the window bits of the negotiated permessage-deflate, 0 when uncompressed
        self.deflate = int(ws.compress or 0) if hub.compression is not None else 0
        self.subscriptions: dict[str, Subscription] = {}
        self.close_code: int | None = None
        self._transport = request.transport
        self._loop = asyncio.get_running_loop()
        self._outbox = outbox_of(self._loop)
        # the feeds of the plain subscriptions (`Router.go_live`), which owe it their frames
        self.feeds: tuple[Feed, ...] = ()
        # A client is slow when more than `_limit` bytes wait in the transport after a write.
        # Within one loop tick a burst may queue more (a large publish batch), up to the
        # hard limit (`HARD_LIMIT_FACTOR` times `_limit`), so a fast client is never dropped
        # for the size of one batch.
        self._limit = hub.config.server.send_buffer_bytes
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_scheduled = False
        self._closing = False
        self._expiry: tuple[asyncio.TimerHandle, ...] = ()  # shared when empty
        self._close_task: asyncio.Task[None] | None = None
        self._held: list[bytes] | None = None
        self._held_size = 0
        self.last_seen = self._loop.time()
        self._schedule_expiry()

    # -- access -------------------------------------------------------------------------

    @property
    def scopes(self) -> frozenset[str]:
        if self.principal is None:
            return self.hub.anonymous_scopes
        return self.principal.scopes

    def allows(self, scope: str) -> bool:
        return scope_allows(self.scopes, scope)

    def require(self, scope: str) -> None:
        """Refuse unless the connection holds `scope`: `unauthenticated` when anonymous."""
        if self.allows(scope):
            return
        if self.principal is None:
            raise HubError("unauthenticated", f"authenticate to get the {scope!r} scope")
        raise HubError("forbidden", f"principal {self.principal.id!r} lacks the {scope!r} scope")

    def set_principal(self, principal: Principal) -> list[str]:
        """Replace the principal (token refresh) and drop the subscriptions it may not hold.

        Returns the topics dropped; each gets a `forbidden` notice.
        """
        self.principal = principal
        self._schedule_expiry()
        dropped = [topic for topic in self.subscriptions if not self.allows(f"subscribe:{topic}")]
        for topic in dropped:
            self.hub.router.remove(self.subscriptions.pop(topic))
            self.notice("forbidden", f"subscription to {topic!r} dropped: the new principal "
                        "lacks its scope", {"topic": topic})
        return dropped

    def _schedule_expiry(self) -> None:
        for handle in self._expiry:
            handle.cancel()
        self._expiry = ()
        expires_at = self.principal.expires_at if self.principal else None
        if expires_at is None:
            return
        remaining = (expires_at - datetime.now(UTC)).total_seconds()
        notice_in = max(0.0, remaining - min(EXPIRY_NOTICE, remaining / 2))
        self._expiry = (
            self._loop.call_later(notice_in, self._expiry_notice, expires_at),
            self._loop.call_later(max(0.0, remaining), self._expired),
        )

    def _expiry_notice(self, expires_at: datetime) -> None:
        self.notice("token_expired", "the credential expires soon; send a new auth request",
                    {"expires_at": protocol.rfc3339(expires_at)})

    def _expired(self) -> None:
        self.close_soon(Close.EXPIRED, "credential expired")

    # -- outgoing -----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue event frame bytes; they leave at the end of this loop tick.

        While a request is being handled, events wait until its reply is queued: a reply
        goes out before any event the request caused.
        """
        held = self._held
        if held is not None:
            held.append(data)
            self._held_size += len(data)
            if self._held_size > self._limit * HARD_LIMIT_FACTOR:
                self.slow_consumer()
            return
        # `_append` inlined: this runs once per receiver and event
        if self._closing:
            return
        self._out.append(data)
        size = self._out_size = self._out_size + len(data)
        if size > self._limit and size > self._limit * HARD_LIMIT_FACTOR:
            self.slow_consumer()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._outbox.add(self)

    def _queue(self, data: bytes) -> None:
        """Queue a reply or notice after everything the feeds owe (unless a request holds
        them back: what they got meanwhile follows its reply)."""
        if self.feeds and self._held is None:
            self._take_feeds()
        self._append(data)

    def _append(self, data: bytes) -> None:
        if self._closing:
            return
        self._out.append(data)
        size = self._out_size = self._out_size + len(data)
        if size > self._limit and size > self._limit * HARD_LIMIT_FACTOR:
            self.slow_consumer()
            return
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._outbox.add(self)

    def _take_feeds(self) -> None:
        """Move what the feeds owe into the queue, so that what is queued next follows it."""
        for feed in self.feeds:
            data = feed.take(self)
            if data:
                self._out.append(data)
                self._out_size += len(data)

    def flush(self) -> None:
        """Write everything queued and owed in one write (the outbox calls this)."""
        self._flush_scheduled = False
        out = self._out
        feeds = self.feeds if self._held is None else ()
        if not out:
            if not feeds:
                return
            data = feeds[0].take(self) if len(feeds) == 1 else b"".join(
                [feed.take(self) for feed in feeds])
            if not data:
                return
        else:
            if feeds:
                self._take_feeds()
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            self._out_size = 0
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        # What the kernel did not take stays in the transport: that is the client's backlog.
        if transport.get_write_buffer_size() > self._limit:
            self.slow_consumer()

    @property
    def pending_bytes(self) -> int:
        """Bytes queued here, owed by feeds, or in the transport, not yet taken by the kernel."""
        transport = self._transport
        buffered = 0 if transport is None or transport.is_closing() else (
            transport.get_write_buffer_size())
        owed = sum(feed.lag_bytes(self) for feed in self.feeds)
        return self._out_size + owed + buffered

    def write_control(self, data: bytes) -> None:
        """Write a control frame (ping) at once; control frames may interleave with messages."""
        transport = self._transport
        if not self._closing and transport is not None and not transport.is_closing():
            transport.write(data)

    def reply(self, obj: dict[str, Any]) -> None:
        self._queue(protocol.frame(obj))

    def notice(self, code: str, message: str, details: Any = None) -> None:
        """An `error` frame not tied to a request (`id` null)."""
        self._queue(protocol.error(None, HubError(code, message, details).body()))

    def slow_consumer(self) -> None:
        """Drop the queue, tell the client why, and close with 4008."""
        if self._closing:
            return
        self._out.clear()
        self._out_size = 0
        self.hub.stats.slow_consumers += 1
        self._detach()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(protocol.error(None, HubError(
                "slow_consumer", "outgoing buffer full; reconnect and resume with `since`",
                {"limit_bytes": self._limit}).body()))
        self._closing = True
        self._start_close(Close.SLOW_CONSUMER, "slow consumer")

    # -- requests -----------------------------------------------------------------------

    async def handle_text(self, text: str) -> None:
        """Parse, check and dispatch one request; exactly one reply goes out, before any
        event that arrived meanwhile."""
        if self.feeds:
            self._take_feeds()  # what the feeds owe now goes out before the reply
        self._held, self._held_size = [], 0
        try:
            await self._handle(text)
        finally:
            held, self._held = self._held or [], None
            # after the reply, and before what the feeds got meanwhile: a replay held here
            # precedes the live events its subscription's feed got since going live
            for data in held:
                self._append(data)
            if self.feeds:
                self._schedule()

    async def _handle(self, text: str) -> None:
        request: dict[str, Any] | None = None
        request_id: Any = None
        op_name = ""
        try:
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise HubError("invalid_json", f"not valid JSON: {exc.msg} at {exc.pos}") from None
            if not isinstance(parsed, dict):
                raise HubError("invalid_message", "a request is a JSON object")
            request = parsed
            if _bad_id(request.get("id")):
                raise HubError("invalid_message",
                               "field 'id': a string of at most 64 characters, or an integer",
                               {"field": "id"})
            request_id = request.get("id")
            op_name = request.get("type")  # type: ignore[assignment]
            if not isinstance(op_name, str):
                raise HubError("invalid_message", "field 'type' is required and must be a string",
                               {"field": "type"})
            ack = await self.hub.dispatch(self, op_name, request)
        except HubError as exc:
            body = exc.body()
            self._queue(protocol.error(request_id, body))
            await self.hub.replied(self, request, {"type": "error", **body})
            return
        except Exception:
            log.exception("request %r failed on session %s", op_name, self.id)
            body = HubError("internal_error", "the server failed to handle this request").body()
            self._queue(protocol.error(request_id, body))
            await self.hub.replied(self, request, {"type": "error", **body})
            return
        self.send_ack(request_id, op_name, ack)
        await self.hub.replied(self, request, {"type": ack.reply_type, **ack.fields})

    def send_ack(self, request_id: Any, op_name: str, ack: Ack) -> None:
        if ack.reply_type == "ack":
            self.reply({"type": "ack", "id": request_id, "op": op_name, **ack.fields})
        else:
            self.reply({"type": ack.reply_type, "id": request_id, **ack.fields})
        if ack.then is not None:
            ack.then()

    # -- closing ------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._closing

    def _detach(self) -> None:
        """Stop all deliveries to this connection."""
        for sub in self.subscriptions.values():
            self.hub.router.remove(sub)
        self.subscriptions.clear()
        for handle in self._expiry:
            handle.cancel()

    def close_soon(self, code: int, reason: str) -> None:
        """Close from synchronous code (timers, the router)."""
        if not self._closing:
            self.flush()
            self._closing = True
            self._detach()
            self._start_close(code, reason)

    async def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close with `code`; drop the transport if the peer stalls."""
        self.close_soon(code, reason)
        if self._close_task is not None:
            await asyncio.shield(self._close_task)

    def _start_close(self, code: int, reason: str) -> None:
        self.close_code = code
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()),
                                   CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if self._transport is not None and not self._transport.is_closing():
                self._transport.abort()

    def mark_closed(self, code: int | None) -> None:
        """Called once the connection is gone, however it ended."""
        if self.close_code is None:
            self.close_code = code
        self._closing = True
        self._out.clear()
        self._detach()
