"""Principals, scopes and the interface every authentication plugin implements.

The core knows no credential format: it hands what the client presented to the enabled
auth methods and keeps the `Principal` one of them returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel

from ocos_hub.protocol import rfc3339


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on the other end, as established by an auth method.

    `attributes` carries method-specific facts a topic may need, such as the wallet
    `address` the identity topic compares with each event's subject.
    """

    id: str
    method: str
    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        """The principal as the protocol shows it in `welcome` and `auth` acks."""
        return {
            "id": self.id,
            "method": self.method,
            "scopes": sorted(self.scopes),
            "expires_at": rfc3339(self.expires_at) if self.expires_at else None,
        }


def scope_allows(scopes: Iterable[str], needed: str) -> bool:
    """True when `scopes` grant `needed` (`verb:topic`) exactly, by `verb:*`, or by `admin`."""
    granted = scopes if isinstance(scopes, (set, frozenset)) else set(scopes)
    if needed in granted or "admin" in granted:
        return True
    verb, _, _ = needed.partition(":")
    return f"{verb}:*" in granted


# Where a handshake credential came from; the auth methods say which kinds they accept.
TOKEN = "token"  # Authorization: Bearer <token>, or ?token=
API_KEY = "api_key"  # X-API-Key: <key>, or ?api_key=


class AuthMethod(ABC):
    """An authentication method (`jwt`, `apikey`, `session`, `signature`, ...).

    `name` is the value of `method` in an `auth` request. Methods raise
    `HubError("invalid_credentials", ...)` for credentials they recognise but refuse.
    """

    name: str = ""
    # For the generated docs: the in-band `auth` request's credential fields, and which
    # handshake credentials (`TOKEN`, `API_KEY`) `from_handshake` reads.
    credentials_model: ClassVar[type[BaseModel] | None] = None
    handshake_credentials: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        """Verify an in-band `auth` request's fields (all but `type`, `id` and `method`)."""

    async def sign_in(self, credentials: Mapping[str, Any]) -> tuple[Principal, dict[str, Any]]:
        """An in-band `auth` request: the connection's new principal, and the fields its ack
        carries beside `principal` (a session `token` the client may present or revoke
        later, say). By default, `authenticate`'s principal and nothing more."""
        return await self.authenticate(credentials), {}

    async def from_handshake(self, kind: str, value: str) -> Principal | None:
        """Verify a credential presented at the handshake or on an HTTP call.

        `kind` is `TOKEN` or `API_KEY`. Return None when the value is not of this method's
        format (another method may own it); raise `invalid_credentials` when it is but fails.
        """
        return None

    async def is_revoked(self, principal: Principal) -> bool:
        """Whether a principal this method issued has been revoked since (checked periodically)."""
        return False
