"""Shared pieces of the extension tests: a token auth plugin and hub configs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocos_hub import AuthMethod, HubError, Principal, hookimpl
from ocos_hub.auth import TOKEN

EXTENSIONS = ("ticks", "filters", "history", "replay")
CLOSED = {"access": {"anonymous": []}}


class TokenAuth(AuthMethod):
    """`Bearer t:<id>:<scope>,<scope>`: a principal with exactly the scopes named."""

    name = "test"

    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        raise HubError("invalid_credentials", "handshake tokens only")

    async def from_handshake(self, kind: str, value: str) -> Principal | None:
        if kind != TOKEN or not value.startswith("t:"):
            return None
        _, who, scopes = value.split(":", 2)
        return Principal(who, "test", frozenset(filter(None, scopes.split(","))))


class TokenPlugin:
    @hookimpl
    def ocos_auth_methods(self, config: Any) -> list[AuthMethod]:
        return [TokenAuth()]


def bearer(who: str, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer t:{who}:{','.join(scopes)}"}


def sqlite(path: Path, **options: Any) -> dict[str, Any]:
    """Config overrides for the SQLite history store at `path`."""
    return {"plugins": {"replay": {"store": "sqlite", "path": str(path), **options}}}


def memory(**options: Any) -> dict[str, Any]:
    return {"plugins": {"replay": {"store": "memory", **options}}}
