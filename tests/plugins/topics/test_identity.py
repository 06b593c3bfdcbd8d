"""The `identity` topic: its subject filter, and events that reach only their subject."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningHub, StartHub
from tests.plugins.topics import (
    TEST_AUTH,
    bearer,
    event,
    expect_filtered,
    expect_invalid_filter,
)
from tests.ticks import tick

ALICE, BOB, CAROL = "AliceAddr111", "BobAddr222", "CarolAddr333"


@pytest.fixture
async def hub(start_hub: StartHub) -> RunningHub:
    # `ticks` gives anonymous clients something they can see, to prove what they do not.
    return await start_hub(plugins=[TEST_AUTH], enabled=["identity", "ticks", TEST_AUTH[0]])


def kyc(subject: str, status: str = "verified") -> Any:
    return event("identity", "kyc.status", subject=subject, status=status)


def personal_history(subject: str) -> list[Any]:
    return [
        event("identity", "identity.registered", subject=subject, did=f"did:ocos:{subject}"),
        kyc(subject, "pending"),
        kyc(subject, "verified"),
        event("identity", "soulbound.issued", subject=subject),
        event("identity", "soulbound.revoked", subject=subject),
        event("identity", "reputation.changed", subject=subject),
    ]


async def test_subject_filter(hub: RunningHub) -> None:
    events = [kyc(ALICE), kyc(BOB), *personal_history(CAROL), kyc(ALICE, "expired")]
    await expect_filtered(hub, "identity", {"subject": [ALICE]}, events, [0, 8],
                          **bearer("all:auditor"))
    await expect_filtered(hub, "identity", {"subject": [CAROL, BOB]}, events[:8],
                          list(range(1, 8)), **bearer("all:auditor"))


async def test_a_subject_sees_only_its_own_events(hub: RunningHub) -> None:
    alice = await hub.connect(**bearer(f"addr:{ALICE}"))
    bob = await hub.connect(**bearer(f"addr:{BOB}"))
    for client in (alice, bob):
        assert (await client.request("subscribe", topic="identity"))["type"] == "ack"
    offsets = await hub.publish(*personal_history(ALICE), kyc(BOB), kyc(ALICE, "expired"))
    # Bob's first event is his own, published after all of Alice's: none of hers came first.
    [own] = await bob.events(1)
    assert own["offset"] == offsets[6] and own["data"]["subject"] == BOB
    got = await alice.events(7)
    assert [e["offset"] for e in got] == offsets[:6] + offsets[7:]
    assert {e["data"]["subject"] for e in got} == {ALICE}

    # Replayed history is narrowed the same way, and so is a filter naming someone else.
    late_bob = await hub.connect(**bearer(f"addr:{BOB}"))
    await late_bob.request("subscribe", topic="identity", filter={"subject": [ALICE, BOB]},
                           rewind=100)
    [own] = await late_bob.events(1)
    assert own["offset"] == offsets[6]
    await hub.publish(kyc(ALICE, "rejected"), kyc(BOB, "expired"))
    [own] = await late_bob.events(1)
    assert own["data"] == kyc(BOB, "expired")[2]


async def test_wallet_address_attribute_counts_as_the_subject(hub: RunningHub) -> None:
    wallet = await hub.connect(**bearer(f"wallet:{ALICE}"))
    assert wallet.welcome["principal"]["id"] == f"user-{ALICE}"
    await wallet.request("subscribe", topic="identity")
    offsets = await hub.publish(kyc(BOB), kyc(ALICE))
    [got] = await wallet.events(1)
    assert got["offset"] == offsets[1]


async def test_anonymous_receives_none(hub: RunningHub) -> None:
    """The demo profile may grant anonymous `subscribe:*`; identity stays private."""
    await hub.publish(*personal_history(ALICE))
    anonymous = await hub.connect()
    # A replay would come between the two acks; `request` fails on any frame but its reply.
    await anonymous.request("subscribe", topic="identity", rewind=100)
    await anonymous.request("subscribe", topic="ticks")
    await hub.publish(*personal_history(BOB))
    [offset] = await hub.publish(tick(1))
    [first] = await anonymous.events(1)
    assert first["topic"] == "ticks" and first["offset"] == offset
    resp = await hub.http.get("/api/v1/topics/identity/events")
    assert (await resp.json())["events"] == []


@pytest.mark.parametrize("token", ["all:auditor", "admin:root"])
async def test_read_all_sees_everyone(hub: RunningHub, token: str) -> None:
    auditor = await hub.connect(**bearer(token))
    await auditor.request("subscribe", topic="identity")
    events = [*personal_history(ALICE), kyc(BOB), kyc(CAROL)]
    offsets = await hub.publish(*events)
    assert [e["offset"] for e in await auditor.events(len(events))] == offsets
    late = await hub.connect(**bearer(token))
    await late.request("subscribe", topic="identity", rewind=len(events))
    assert [e["offset"] for e in await late.events(len(events))] == offsets
    resp = await hub.http.get("/api/v1/topics/identity/events",
                              headers=bearer(token)["headers"])
    assert [e["offset"] for e in (await resp.json())["events"]] == offsets


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"address": [ALICE]}, "address"),
        ({"subject": ALICE}, "subject"),
        ({"subject": []}, "subject"),
        ({"subject": [1]}, "subject"),
    ],
)
async def test_bad_filter_is_invalid_filter(hub: RunningHub, flt: Any, field: str) -> None:
    await expect_invalid_filter(hub, "identity", flt, field)
