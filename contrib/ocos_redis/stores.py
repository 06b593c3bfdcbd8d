"""Shared stores on the broker's Redis, so that every node sees the same state.

Sessions (`<prefix>:session:<sha256 of token>`) and wallet-login nonces
(`<prefix>:nonce:<nonce>`) expire in Redis at their own expiry (`PXAT`), so nothing needs
sweeping. A nonce is consumed with `GETDEL`: of two nodes answering the same challenge at
once, exactly one gets it. Rate-limit buckets and connection counts (`<prefix>:rate:...`)
are Lua scripts, so concurrent nodes never both take the last token.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from ocos_auth.common import utcnow
from ocos_auth.sessions import SessionRecord, SessionStore
from ocos_auth.wallet import Challenge, NonceStore
from ocos_hub import HubError
from ocos_redis.broker import REDIS_DOWN


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RedisStore:
    """Base of the stores: one client of their own, outages as `unavailable`."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def _call(self, what: str, command: Any) -> Any:
        try:
            return await command
        except REDIS_DOWN as exc:
            raise HubError("unavailable", f"{what}: the Redis store is unreachable; "
                           "try again shortly") from exc

    async def close(self) -> None:
        await self.client.aclose()


class RedisSessionStore(RedisStore, SessionStore, NonceStore):
    """Login sessions and wallet-login nonces shared by every node."""

    def _session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def _nonce(self, nonce: str) -> str:
        return f"{self.prefix}:nonce:{nonce}"

    async def create(self, session_id: str, record: SessionRecord) -> None:
        value = json.dumps({
            "principal": record.principal_id,
            "scopes": sorted(record.scopes),
            "expires_at": record.expires_at.isoformat(),
            "attributes": dict(record.attributes),
        }, separators=(",", ":"))
        await self._call("session", self.client.set(
            self._session(session_id), value, pxat=_ms(record.expires_at)))

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = await self._call("session", self.client.get(self._session(session_id)))
        if raw is None:
            return None
        stored = json.loads(raw)
        record = SessionRecord(stored["principal"], frozenset(stored["scopes"]),
                               datetime.fromisoformat(stored["expires_at"]),
                               stored["attributes"])
        return record if record.expires_at > utcnow() else None

    async def revoke(self, session_id: str) -> bool:
        return bool(await self._call("session", self.client.delete(self._session(session_id))))

    async def issue(self, nonce: str, challenge: Challenge) -> None:
        value = json.dumps({"address": challenge.address,
                            "issued_at": challenge.issued_at.isoformat(),
                            "expires_at": challenge.expires_at.isoformat()},
                           separators=(",", ":"))
        fresh = await self._call("challenge", self.client.set(
            self._nonce(nonce), value, pxat=_ms(challenge.expires_at), nx=True))
        if not fresh:  # 128 random bits never collide; a repeat is a bug, not a user error
            raise HubError("internal_error", "nonce issued twice")

    async def consume(self, nonce: str) -> Challenge | None:
        raw = await self._call("challenge", self.client.getdel(self._nonce(nonce)))
        if raw is None:
            return None
        stored = json.loads(raw)
        challenge = Challenge(stored["address"], datetime.fromisoformat(stored["issued_at"]),
                              datetime.fromisoformat(stored["expires_at"]))
        return challenge if challenge.expires_at > utcnow() else None

