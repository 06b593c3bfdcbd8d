"""`ratelimit`: token buckets for requests, handshakes and HTTP calls; connection caps.

What is limited (every bucket holds `burst` tokens and refills at its rate):

- each connection's requests (`messages_per_second`, `burst`), every request type counted;
- each principal's requests across all its connections (`principal_messages_per_second`,
  `principal_burst`); anonymous connections count as one principal per client address;
- `subscribe` and `publish` per principal (or anonymous address) and topic (`[topics]`,
  with `"*"` for every topic not listed);
- handshakes per client address (`connections_per_second`, `connection_burst`), open
  connections per client address (`max_connections_per_ip`) and per principal
  (`max_connections_per_principal`);
- HTTP API calls per client address (`http_requests_per_second`, `http_burst`).

A refused request gets `rate_limited` with `details.retry_after` (seconds until the bucket
that refused has a token) and `details.limit` (`connection`, `principal` or `topic`).

The second allowance: refusals are metered too, by a second bucket per connection of
`second_allowance` tokens (default: `burst`) refilled at `messages_per_second`. Each
refused request takes one token from it. The refused request that finds it empty gets a
last `rate_limited` (with `details.closing = true`) and the connection is closed with
4029. A client that backs off when told never reaches that; one that keeps sending at
full speed is closed after `burst` served requests and `second_allowance + 1` refusals.

Handshakes over a rate are refused with HTTP 429 `rate_limited` and `Retry-After`; over a
connection cap with HTTP 429 `too_many_connections` (`details.limit`, `details.max`).
HTTP calls over the rate: 429 `rate_limited` with `Retry-After` (whole seconds, rounded up).

Buckets and counters shared across connections live behind `RateLimitStore` (memory by
default); a shared store (Redis) makes them hold across nodes. Each connection's own
buckets stay in process: a connection lives on one node.

Order 200: after the origin check, before anything that costs (credentials, audit).
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from aiohttp import web
from pydantic import BaseModel, Field

from ocos_hub import HubError, Middleware, Principal, hookimpl
from ocos_hub.appkeys import HUB
from ocos_hub.config import ConfigError, Section
from ocos_hub.hub import Hub
from ocos_hub.middleware import Handler
from ocos_hub.protocol import Close
from ocos_hub.session import Session
from ocos_middleware._common import installed

TOO_MANY_CONNECTIONS = "too_many_connections"


class RateLimitStore(ABC):
    """Token buckets and counters shared by every connection (and, in a shared store, by
    every node). Keys are opaque strings chosen by the middleware."""

    @abstractmethod
    async def take(self, key: str, rate: float, burst: float) -> float:
        """Take one token from bucket `key` (created full). Return 0.0 when taken, else
        the seconds until a token will be there (nothing is taken then)."""

    @abstractmethod
    async def acquire(self, key: str, limit: int) -> bool:
        """Count one more holder of `key` when fewer than `limit` hold it; False when full."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """Count one holder of `key` fewer (after a successful `acquire`)."""

    async def holders(self, key: str) -> int:
        """How many hold `key` now (diagnostics, tests)."""
        return 0

    async def close(self) -> None:  # noqa: B027 (optional: most stores hold nothing)
        """Release connections or files; called at shutdown."""


class TokenBucket:
    """A bucket owned by one connection: no lock, no await."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> float:
        """0.0 and one token fewer, or the seconds until a token is there."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


class MemoryRateLimitStore(RateLimitStore):
    """The default store: one process. Full buckets are forgotten (a full bucket and a
    missing one are the same), swept at most every `sweep_every` seconds."""

    def __init__(self, sweep_every: float = 60.0) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._holders: dict[str, int] = {}
        self._sweep_every = sweep_every
        self._last_sweep = time.monotonic()

    async def take(self, key: str, rate: float, burst: float) -> float:
        now = time.monotonic()
        if now - self._last_sweep > self._sweep_every:
            self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, burst, now)
        return bucket.take(now)

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        full = [key for key, b in self._buckets.items()
                if b.tokens + (now - b.stamp) * b.rate >= b.burst]
        for key in full:
            del self._buckets[key]

    async def acquire(self, key: str, limit: int) -> bool:
        held = self._holders.get(key, 0)
        if held >= limit:
            return False
        self._holders[key] = held + 1
        return True

    async def release(self, key: str) -> None:
        held = self._holders.get(key, 0) - 1
        if held > 0:
            self._holders[key] = held
        else:
            self._holders.pop(key, None)

    async def holders(self, key: str) -> int:
        return self._holders.get(key, 0)


class TopicRate(Section):
    subscribe_per_second: float | None = Field(
        None, gt=0, description="`subscribe` requests per second per principal for the topic "
        "(unset: unlimited).")
    subscribe_burst: int = Field(10, ge=1, description="Bucket size for `subscribe`.")
    publish_per_second: float | None = Field(
        None, gt=0, description="`publish` requests per second per principal for the topic "
        "(unset: unlimited).")
    publish_burst: int = Field(20, ge=1, description="Bucket size for `publish`.")


class RateLimitConfig(Section):
    messages_per_second: float = Field(20.0, gt=0, description="Requests per second per "
                                       "connection (shown in the welcome's limits.rate).")
    burst: int = Field(40, ge=1, description="Requests a connection may send at once.")
    second_allowance: int | None = Field(
        None, ge=0, description="Refusals a connection may draw (refilled at "
        "messages_per_second) before it is closed with 4029; default: burst.")
    principal_messages_per_second: float = Field(
        100.0, ge=0, description="Requests per second per principal over all its connections "
        "(anonymous: per client address); 0 disables.")
    principal_burst: int = Field(200, ge=1, description="Bucket size per principal.")
    topics: dict[str, TopicRate] = Field(
        default_factory=dict, description="Per-topic subscribe/publish rates by topic name; "
        "`\"*\"` applies to topics not listed.")
    connections_per_second: float = Field(
        10.0, ge=0, description="Handshakes per second per client address; 0 disables.")
    connection_burst: int = Field(20, ge=1, description="Handshakes a client address may "
                                  "make at once.")
    max_connections_per_ip: int = Field(
        200, ge=0, description="Open connections per client address; 0: no cap.")
    max_connections_per_principal: int = Field(
        50, ge=0, description="Open connections per authenticated principal; 0: no cap.")
    http_requests_per_second: float = Field(
        50.0, ge=0, description="HTTP API calls per second per client address; 0 disables.")
    http_burst: int = Field(100, ge=1, description="HTTP calls a client address may make "
                            "at once.")
    exempt_paths: list[str] = Field(
        default_factory=lambda: ["/healthz", "/readyz", "/metrics"],
        description="HTTP paths never limited (probes, scrapes).")
    client_ip_header: str | None = Field(
        None, description="Take the client address from this header's last value "
        "(e.g. X-Forwarded-For) instead of the peer; set only behind a proxy that appends it.")


@dataclass
class ConnectionState:
    bucket: TokenBucket
    allowance: TokenBucket
    doomed: bool = False
    reserved: list[str] = field(default_factory=list)


# Connection-cap keys reserved by a handshake, released when its request ends.
RESERVED: web.RequestKey[list[str]] = web.RequestKey("ocos_ratelimit_reserved")


class RateLimiter(Middleware):
    """All the limits above; state per connection here, shared state in the store."""

    name: ClassVar[str] = "ratelimit"
    order: ClassVar[int] = 200

    def __init__(self, config: RateLimitConfig, store: RateLimitStore | None = None) -> None:
        self.config = config
        self.store: RateLimitStore = store or MemoryRateLimitStore()
        self.allowance = config.burst if config.second_allowance is None else (
            config.second_allowance)
        self._connections: dict[Session, ConnectionState] = {}
        self._exempt = frozenset(config.exempt_paths)

    def start(self, hub: Hub) -> None:
        hub.welcome_limits["rate"] = {"messages_per_second": self.config.messages_per_second,
                                      "burst": self.config.burst}

    def client_ip(self, request: web.Request) -> str:
        header = self.config.client_ip_header
        if header is not None:
            value = request.headers.get(header, "")
            last = value.rsplit(",", 1)[-1].strip()
            if last:
                return last
        return request.remote or "?"

    @staticmethod
    def _retry(wait: float) -> float:
        return math.ceil(wait * 1000) / 1000

    def _too_fast(self, what: str, wait: float, limit: str) -> HubError:
        return HubError("rate_limited", f"{what}: retry in {self._retry(wait)} s",
                        {"retry_after": self._retry(wait), "limit": limit}, status=429,
                        headers={"Retry-After": str(max(1, math.ceil(wait)))})

    # -- handshakes and connections ------------------------------------------------------

    async def _reserve(self, request: web.Request, key: str, cap: int, limit: str) -> None:
        if not await self.store.acquire(key, cap):
            raise HubError(TOO_MANY_CONNECTIONS, f"too many open connections for this {limit}",
                           {"limit": limit, "max": cap}, status=429)
        request.setdefault(RESERVED, []).append(key)

    async def on_handshake(self, request: web.Request) -> None:
        config = self.config
        ip = self.client_ip(request)
        if config.connections_per_second:
            wait = await self.store.take(f"handshake:{ip}", config.connections_per_second,
                                         config.connection_burst)
            if wait:
                raise self._too_fast("too many handshakes from this address", wait, "address")
        if config.max_connections_per_ip:
            await self._reserve(request, f"conns:ip:{ip}", config.max_connections_per_ip,
                                "address")

    async def on_admit(self, request: web.Request, principal: Principal | None) -> None:
        cap = self.config.max_connections_per_principal
        if principal is not None and cap:
            await self._reserve(request, f"conns:principal:{principal.id}", cap, "principal")

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == request.app[HUB].config.server.ws_path:
            try:  # the socket's request lasts as long as its connection
                return await handler(request)
            finally:
                for key in request.get(RESERVED, ()):
                    await self.store.release(key)
        rate = self.config.http_requests_per_second
        if rate and request.path not in self._exempt:
            wait = await self.store.take(f"http:{self.client_ip(request)}", rate,
                                         self.config.http_burst)
            if wait:
                raise self._too_fast("too many requests", wait, "address")
        return await handler(request)

    async def on_connect(self, session: Session) -> None:
        now = asyncio.get_running_loop().time()
        config = self.config
        self._connections[session] = ConnectionState(
            TokenBucket(config.messages_per_second, config.burst, now),
            TokenBucket(config.messages_per_second, self.allowance, now))

    async def on_disconnect(self, session: Session, code: int | None) -> None:
        self._connections.pop(session, None)

    # -- requests ------------------------------------------------------------------------

    def _principal_key(self, session: Session) -> str:
        principal = session.principal
        if principal is not None:
            return f"p:{principal.id}"
        return f"ip:{self.client_ip(session.request)}"

    async def on_request(self, session: Session, request: dict[str, object]) -> None:
        state = self._connections.get(session)
        if state is None:
            return
        now = asyncio.get_running_loop().time()
        wait, limit = state.bucket.take(now), "connection"
        config = self.config
        if not wait and config.principal_messages_per_second:
            who = self._principal_key(session)
            wait = await self.store.take(f"msg:{who}", config.principal_messages_per_second,
                                         config.principal_burst)
            limit = "principal"
        op, topic = request.get("type"), request.get("topic")
        if not wait and op in ("subscribe", "publish") and isinstance(topic, str):
            rates = config.topics.get(topic) or config.topics.get("*")
            if rates is not None:
                per_second, burst = ((rates.subscribe_per_second, rates.subscribe_burst)
                                     if op == "subscribe" else
                                     (rates.publish_per_second, rates.publish_burst))
                if per_second is not None:
                    who = self._principal_key(session)
                    wait = await self.store.take(f"{op}:{topic}:{who}", per_second, burst)
                    limit = "topic"
        if not wait:
            return
        error = self._too_fast("request rate limit", wait, limit)
        if limit == "topic":
            error.details["topic"] = topic
        if state.allowance.take(now):
            state.doomed = True
            error.details["closing"] = True
            error.message = "rate limit exceeded again and again; closing the connection"
        raise error

    async def on_reply(self, session: Session, request: dict[str, object] | None,
                       reply: dict[str, object]) -> None:
        state = self._connections.get(session)
        if state is not None and state.doomed and reply.get("code") == "rate_limited":
            # awaited: the read loop must not end (and aiohttp close with 1000) before it
            await session.close(Close.RATE_LIMITED, "rate limit exceeded")


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return RateLimitConfig


@hookimpl
def ocos_middleware(config: RateLimitConfig) -> list[Middleware]:
    return [RateLimiter(config)]


@hookimpl
def ocos_startup(hub: Hub) -> None:
    shared = hub.plugins.single("ocos_rate_limit_store", "rate-limit store",
                                hub_config=hub.config)
    if shared is not None and not isinstance(shared, RateLimitStore):
        raise ConfigError(f"ocos_rate_limit_store returned {type(shared).__name__}, "
                          "not an ocos_middleware.ratelimit.RateLimitStore")
    for limiter in installed(hub, RateLimiter):
        if shared is not None:
            limiter.store = shared
        limiter.start(hub)


@hookimpl
async def ocos_shutdown(hub: Hub) -> None:
    for limiter in installed(hub, RateLimiter):
        await limiter.store.close()
