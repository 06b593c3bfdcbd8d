"""Login sessions: opaque bearer tokens with expiry and revocation (auth method `session`).

Other plugins create sessions (the wallet's `POST /auth/verify`); clients then present the
token like any bearer token, at the handshake, in an `auth` request (`method: "session"`)
or on HTTP calls. `POST /auth/logout` revokes the presented token and closes (4003) every
socket authenticated with it.

The store is keyed by the SHA-256 of each token, never the token, so a leaked store (a
Redis dump) cannot be replayed. The memory store is the default; a plugin implementing the
`ocos_session_store` hook supplies a shared one. Other plugins reach this plugin's state
through the hub's registry of auth methods: `hub.auth_methods["session"]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import logging
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ocos_auth.common import CredentialFields, parse_fields, presented_token, refuse, utcnow
from ocos_hub import AuthMethod, HubError, Principal, hookimpl
from ocos_hub.app import HUB
from ocos_hub.auth import TOKEN
from ocos_hub.config import ConfigError

if TYPE_CHECKING:
    from ocos_hub.hub import Hub

log = logging.getLogger("ocos_auth.sessions")

# `secrets.token_urlsafe(32)`: recognisable without a lookup, and never JWT-shaped (no dots).
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


class SessionsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl: float = Field(
        86400.0, gt=0, description="Lifetime in seconds of a session whose creator (the wallet "
        "plugin has its own `session_ttl`) does not choose one.")
    revocation_check: float = Field(
        1.0, gt=0, description="Seconds between checks of live connections' sessions against "
        "the store, so a session revoked elsewhere (another node sharing the store) closes its "
        "sockets (4003) within this interval. Logouts on this node close them at once.")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What a session token stands for."""

    principal_id: str
    scopes: frozenset[str]
    expires_at: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)


class SessionStore(ABC):
    """Where sessions live, keyed by `session_id(token)`. Implementations must be safe to
    share between nodes: `get` after `revoke` returns None everywhere."""

    @abstractmethod
    async def create(self, session_id: str, record: SessionRecord) -> None:
        """Keep `record` until `record.expires_at` (it may be dropped after)."""

    @abstractmethod
    async def get(self, session_id: str) -> SessionRecord | None:
        """The live session, or None when it is unknown, expired or revoked."""

    @abstractmethod
    async def revoke(self, session_id: str) -> bool:
        """Forget a session; True when it was live."""

    async def close(self) -> None:
        """Release connections at shutdown (the memory store holds none)."""
        return None


class MemorySessionStore(SessionStore):
    """Sessions of one process; expired ones are pruned as new ones are made."""

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._expiries: list[tuple[datetime, str]] = []

    def _prune(self) -> None:
        now = utcnow()
        while self._expiries and self._expiries[0][0] <= now:
            _, session_id = heapq.heappop(self._expiries)
            record = self._records.get(session_id)
            if record is not None and record.expires_at <= now:
                del self._records[session_id]

    async def create(self, session_id: str, record: SessionRecord) -> None:
        self._prune()
        self._records[session_id] = record
        heapq.heappush(self._expiries, (record.expires_at, session_id))

    async def get(self, session_id: str) -> SessionRecord | None:
        record = self._records.get(session_id)
        if record is None or record.expires_at <= utcnow():
            return None
        return record

    async def revoke(self, session_id: str) -> bool:
        record = self._records.pop(session_id, None)
        return record is not None and record.expires_at > utcnow()


def session_id(token: str) -> str:
    """The store key of a token: safe to log and to keep in a principal's attributes."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionTokenFields(CredentialFields):
    token: StrictStr = Field(description="A session token the hub issued (wallet login).")


class SessionAuth(AuthMethod):
    """The `session` auth method, and the per-app owner of the session store."""

    name = "session"
    credentials_model = SessionTokenFields
    handshake_credentials = (TOKEN,)

    def __init__(self, config: SessionsConfig) -> None:
        self.config = config
        self.store: SessionStore = MemorySessionStore()
        self.hub: Hub | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def issue(
        self, principal_id: str, scopes: Collection[str], attributes: Mapping[str, Any],
        ttl: float | None = None,
    ) -> tuple[str, Principal]:
        """Create a session; return its token (shown to the client once) and principal."""
        token = secrets.token_urlsafe(32)
        expires_at = utcnow() + timedelta(seconds=ttl or self.config.ttl)
        record = SessionRecord(principal_id, frozenset(scopes), expires_at, dict(attributes))
        await self.store.create(session_id(token), record)
        return token, self._principal(session_id(token), record)

    def _principal(self, sid: str, record: SessionRecord) -> Principal:
        return Principal(id=record.principal_id, method=self.name, scopes=record.scopes,
                         expires_at=record.expires_at,
                         attributes={**record.attributes, "session_id": sid})

    async def verify(self, token: str) -> Principal:
        if not TOKEN_SHAPE.fullmatch(token):
            raise refuse("not a session token")
        sid = session_id(token)
        record = await self.store.get(sid)
        if record is None:
            raise refuse("session token unknown, expired or revoked; sign in again")
        return self._principal(sid, record)

    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        return await self.verify(parse_fields(self.name, SessionTokenFields, credentials).token)

    async def from_handshake(self, kind: str, value: str) -> Principal | None:
        if kind != TOKEN or not TOKEN_SHAPE.fullmatch(value):
            return None
        return await self.verify(value)

    async def is_revoked(self, principal: Principal) -> bool:
        sid = principal.attributes.get("session_id")
        return isinstance(sid, str) and await self.store.get(sid) is None

    async def revoke(self, token: str) -> int:
        """Revoke a session and close (4003) the sockets it authenticates; return how many."""
        if not TOKEN_SHAPE.fullmatch(token):
            raise refuse("not a session token")
        sid = session_id(token)
        if not await self.store.revoke(sid):
            raise refuse("session token unknown, expired or revoked")
        return self._close(sid)

    def _close(self, sid: str) -> int:
        if self.hub is None:
            return 0
        return self.hub.revoke(
            lambda p: p.method == self.name and p.attributes.get("session_id") == sid,
            "session revoked")

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, hub: Hub) -> None:
        self.hub = hub
        shared = hub.plugins.single("ocos_session_store", "session store",
                                    hub_config=hub.config)
        if shared is not None:
            if not isinstance(shared, SessionStore):
                raise ConfigError(f"ocos_session_store returned {type(shared).__name__}, "
                                  "not an ocos_auth.sessions.SessionStore")
            self.store = shared
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(hub))

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.store.close()

    async def _sweep(self, hub: Hub) -> None:
        """Close sockets whose session was revoked behind this node's back (shared store).

        Expired sessions are left to the core, which closes them 4001 at expiry.
        """
        while True:
            await asyncio.sleep(self.config.revocation_check)
            now = utcnow()
            live = {
                s.principal.attributes.get("session_id")
                for s in hub.sessions
                if s.principal is not None and s.principal.method == self.name
                and s.principal.expires_at is not None and s.principal.expires_at > now
            }
            for sid in live:
                try:
                    if isinstance(sid, str) and await self.store.get(sid) is None:
                        self._close(sid)
                except Exception:  # a store outage must not stop later checks
                    log.exception("checking session revocations failed")
                    break


def session_auth(hub: Hub) -> SessionAuth | None:
    """This app's sessions plugin state, when the plugin is enabled."""
    method = hub.auth_methods.get(SessionAuth.name)
    return method if isinstance(method, SessionAuth) else None


async def logout(request: web.Request) -> web.Response:
    """`POST /auth/logout`: revoke the presented session token."""
    sessions = session_auth(request.app[HUB])
    if sessions is None:  # only when another plugin took the method name `session`
        raise web.HTTPNotFound()
    token = presented_token(request)
    if token is None:
        raise HubError("unauthenticated", "present the session token to revoke as "
                       "'Authorization: Bearer <token>'")
    closed = await sessions.revoke(token)
    return web.json_response({"revoked": True, "connections_closed": closed})


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return SessionsConfig


@hookimpl
def ocos_auth_methods(config: SessionsConfig) -> list[AuthMethod]:
    return [SessionAuth(config)]


@hookimpl
def ocos_routes(config: SessionsConfig) -> list[web.AbstractRouteDef]:
    return [web.post("/auth/logout", logout)]


@hookimpl
def ocos_startup(hub: Hub, config: SessionsConfig) -> Awaitable[None] | None:
    sessions = session_auth(hub)
    return sessions.start(hub) if sessions is not None else None


@hookimpl
def ocos_shutdown(hub: Hub, config: SessionsConfig) -> Awaitable[None] | None:
    sessions = session_auth(hub)
    return sessions.stop() if sessions is not None else None
