"""Tests of the first-party topic plugins, and the helpers they share."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

from ocos_hub import AuthMethod, HubError, Principal, hookimpl
from ocos_hub.auth import TOKEN
from tests.conftest import RunningHub

NAMES = ("blocks", "governance", "dao", "liquidity", "nft", "identity")
MODULES: dict[str, ModuleType] = {name: importlib.import_module(f"ocos_topics.{name}")
                                  for name in NAMES}

Draft = tuple[str, str, dict[str, Any]]


def event(topic: str, kind: str, **changes: Any) -> Draft:
    """The kind's documented example with some fields changed (`from_` sets `from`)."""
    data = dict(MODULES[topic].topic.examples[kind])
    for name, value in changes.items():
        data[name.rstrip("_")] = value
    return (topic, kind, data)


async def expect_filtered(
    hub: RunningHub,
    topic: str,
    filter: dict[str, Any],
    events: list[Draft],
    keep: list[int],
    **connect: Any,
) -> None:
    """Publish `events`; a subscriber with `filter` gets exactly those at `keep`, both live
    and when it subscribes afterwards with `rewind`.

    The last event must be kept: receiving it, in offset order, proves that nothing else
    passed, with no need to wait for frames that should not come.
    """
    assert keep and keep[-1] == len(events) - 1, "the last event must pass the filter"
    live = await hub.connect(**connect)
    ack = await live.request("subscribe", topic=topic, filter=filter)
    assert ack["type"] == "ack", ack
    offsets = await hub.publish(*events)
    expected = [(offsets[i], events[i][1]) for i in keep]
    got = await live.events(len(keep))
    assert [(e["offset"], e["event"]) for e in got] == expected, "live"

    late = await hub.connect(**connect)
    ack = await late.request("subscribe", topic=topic, filter=filter, rewind=len(events))
    assert ack["type"] == "ack", ack
    got = await late.events(len(keep))
    assert [(e["offset"], e["event"]) for e in got] == expected, "replayed"


async def expect_invalid_filter(hub: RunningHub, topic: str, filter: Any, field: str) -> None:
    """Subscribing with `filter` is refused as `invalid_filter` naming `field`."""
    client = await hub.connect()
    reply = await client.request("subscribe", topic=topic, filter=filter)
    assert reply["type"] == "error" and reply["code"] == "invalid_filter", reply
    named = reply["details"]["field"]
    assert named == field or named.startswith(f"{field}."), reply
    assert field in reply["message"], reply


class AddressAuth(AuthMethod):
    """Test credentials: `Bearer addr:<A>` is principal A; `wallet:<A>` a principal with
    wallet address A under another id; `all:<id>` holds `identity:read_all`; `admin:<id>`
    holds `admin`."""

    name = "test"
    SCOPES: ClassVar[dict[str, frozenset[str]]] = {
        "addr": frozenset({"subscribe:identity"}),
        "wallet": frozenset({"subscribe:identity"}),
        "all": frozenset({"subscribe:identity", "identity:read_all"}),
        "admin": frozenset({"admin"}),
    }

    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        principal = await self.from_handshake(TOKEN, str(credentials.get("token", "")))
        if principal is None:
            raise HubError("invalid_credentials", "not a test token")
        return principal

    async def from_handshake(self, kind: str, value: str) -> Principal | None:
        prefix, _, rest = value.partition(":")
        if kind != TOKEN or prefix not in self.SCOPES or not rest:
            return None
        if prefix == "wallet":
            return Principal(id=f"user-{rest}", method=self.name, scopes=self.SCOPES[prefix],
                             attributes={"address": rest})
        return Principal(id=rest, method=self.name, scopes=self.SCOPES[prefix])


class AddressAuthPlugin:
    @hookimpl
    def ocos_auth_methods(self, config: Any) -> list[AuthMethod]:
        return [AddressAuth()]


TEST_AUTH = ("testauth", AddressAuthPlugin())


def bearer(token: str) -> dict[str, Any]:
    """`connect()` arguments presenting a test token at the handshake."""
    return {"headers": {"Authorization": f"Bearer {token}"}}
