"""The `governance` topic's filter on live and replayed events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningHub, StartHub
from tests.plugins.topics import event, expect_filtered, expect_invalid_filter


@pytest.fixture
async def hub(start_hub: StartHub) -> RunningHub:
    return await start_hub(enabled=["governance"])


def created(pid: str) -> Any:
    return event("governance", "proposal.created", proposal_id=pid)


def vote(pid: str, voter: str, choice: str = "yes") -> Any:
    return event("governance", "vote.cast", proposal_id=pid, voter=voter, choice=choice)


def status(pid: str, value: str) -> Any:
    return event("governance", "proposal.status", proposal_id=pid, status=value)


def executed(pid: str) -> Any:
    return event("governance", "proposal.executed", proposal_id=pid)


async def test_proposal_id_keeps_every_kind_about_them(hub: RunningHub) -> None:
    events = [created("p1"), created("p2"), vote("p1", "v1"), vote("p3", "v1"),
              status("p2", "active"), status("p1", "passed"), executed("p3"), executed("p1")]
    await expect_filtered(hub, "governance", {"proposal_id": ["p1"]}, events, [0, 2, 5, 7])
    await expect_filtered(hub, "governance", {"proposal_id": ["p1", "p2"]}, events,
                          [0, 1, 2, 4, 5, 7])


async def test_voter_keeps_only_their_votes(hub: RunningHub) -> None:
    events = [created("p1"), vote("p1", "v2"), vote("p1", "v1", "no"), status("p1", "active"),
              executed("p1"), vote("p2", "v1", "abstain")]
    await expect_filtered(hub, "governance", {"voter": "v1"}, events, [2, 5])


async def test_every_given_field_must_match(hub: RunningHub) -> None:
    events = [vote("p2", "v1"), vote("p1", "v2"), created("p1"), vote("p1", "v1")]
    await expect_filtered(hub, "governance", {"proposal_id": ["p1"], "voter": "v1"}, events,
                          [3])


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"proposal": ["p1"]}, "proposal"),
        ({"proposal_id": "p1"}, "proposal_id"),
        ({"proposal_id": []}, "proposal_id"),
        ({"proposal_id": [42]}, "proposal_id"),
        ({"voter": ["v1"]}, "voter"),
        ({"voter": 7}, "voter"),
    ],
)
async def test_bad_filter_is_invalid_filter(hub: RunningHub, flt: Any, field: str) -> None:
    await expect_invalid_filter(hub, "governance", flt, field)
