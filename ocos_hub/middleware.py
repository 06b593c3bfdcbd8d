"""Middleware: code that sees every handshake and every request, in a defined order.

A middleware overrides only the methods it needs; the core calls only the overridden
ones, so an unused stage costs nothing. None of them is on the per-delivery path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

if TYPE_CHECKING:
    from ocos_hub.auth import Principal
    from ocos_hub.broker import Event
    from ocos_hub.session import Session

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Middleware:
    """Base class of middleware plugins.

    `order` places the middleware in the chain, lower first; ties keep the order of
    `[plugins] enabled`. The documented slots: origin 100, ratelimit 200, auth-related 300,
    audit 400, metrics 500, tracing 600, logging 700 (and 10 for its HTTP access log, so
    that refusals by origin and ratelimit are logged too); docs/operations.md.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 1000

    async def on_handshake(self, request: web.Request) -> None:
        """Before the WebSocket upgrade, before credentials are checked (cheap refusals:
        origin, connection rate). Raise `HubError` (with `status`) to refuse it."""

    async def on_admit(self, request: web.Request, principal: Principal | None) -> None:
        """After the handshake's credentials were verified, just before the upgrade, so
        that limits per principal can refuse it. Raise `HubError` (with `status`) to refuse."""

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Around every HTTP request of the hub (API, docs, metrics, the socket's upgrade)."""
        return await handler(request)

    async def on_connect(self, session: Session) -> None:
        """After the welcome frame is queued."""

    async def on_request(self, session: Session, request: dict[str, Any]) -> None:
        """Before a request is dispatched. Raise `HubError` to refuse it."""

    async def on_reply(
        self, session: Session, request: dict[str, Any] | None, reply: dict[str, Any]
    ) -> None:
        """After a request was answered; `reply` is `{type, code?, ...}` without frame bytes."""

    async def on_auth(
        self, session: Session | None, principal: Principal | None, error: str | None,
        request: web.Request | None,
    ) -> None:
        """After a credential was checked, at the handshake, in band or over HTTP.

        `session` is None at the handshake and over HTTP; `request` is the HTTP request
        (for in-band `auth`, the connection's handshake), None when a plugin did not say.
        """

    def on_published(self, events: list[Event], deliveries: Mapping[str, int]) -> None:
        """Synchronously after a batch of events was handed to local receivers.

        `deliveries` maps each topic of the batch to the number of live frames queued for
        it (one per receiving subscription and event). Called once per batch, never per
        receiver; the frames leave in the flush callbacks the batch scheduled.
        """

    async def on_disconnect(self, session: Session, code: int | None) -> None:
        """After the connection closed, with the close code when known."""

    def overrides(self, method: str) -> bool:
        """Whether this middleware implements `method` (the core skips the others)."""
        return getattr(type(self), method) is not getattr(Middleware, method)
