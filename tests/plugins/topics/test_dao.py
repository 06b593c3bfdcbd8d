"""The `dao` topic's filter on live and replayed events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningHub, StartHub
from tests.plugins.topics import event, expect_filtered, expect_invalid_filter


@pytest.fixture
async def hub(start_hub: StartHub) -> RunningHub:
    return await start_hub(enabled=["dao"])


def created(dao: str, creator: str = "founder") -> Any:
    return event("dao", "dao.created", dao_id=dao, creator=creator)


def joined(dao: str, member: str, role: str = "member") -> Any:
    return event("dao", "member.joined", dao_id=dao, member=member, role=role)


def left(dao: str, member: str) -> Any:
    return event("dao", "member.left", dao_id=dao, member=member)


def role(dao: str, member: str, new: str) -> Any:
    return event("dao", "member.role_changed", dao_id=dao, member=member, role=new,
                 old_role=None)


def decided(dao: str) -> Any:
    return event("dao", "decision.recorded", dao_id=dao)


async def test_dao_id_keeps_every_kind_about_them(hub: RunningHub) -> None:
    events = [created("d1"), created("d2"), joined("d1", "m1"), joined("d3", "m1"),
              role("d1", "m1", "admin"), decided("d2"), left("d1", "m1"), decided("d1")]
    await expect_filtered(hub, "dao", {"dao_id": ["d1"]}, events, [0, 2, 4, 6, 7])
    await expect_filtered(hub, "dao", {"dao_id": ["d3", "d2"]}, events[:6], [1, 3, 5])


async def test_member_keeps_only_membership_events_of_that_account(hub: RunningHub) -> None:
    events = [created("d1", creator="m1"), joined("d1", "m1", "owner"), joined("d1", "m2"),
              decided("d1"), role("d2", "m1", "observer"), left("d1", "m2"), left("d2", "m1")]
    await expect_filtered(hub, "dao", {"member": "m1"}, events, [1, 4, 6])


async def test_every_given_field_must_match(hub: RunningHub) -> None:
    events = [joined("d2", "m1"), joined("d1", "m2"), created("d1", "m1"), joined("d1", "m1")]
    await expect_filtered(hub, "dao", {"dao_id": ["d1"], "member": "m1"}, events, [3])


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"dao": ["d1"]}, "dao"),
        ({"dao_id": "d1"}, "dao_id"),
        ({"dao_id": []}, "dao_id"),
        ({"dao_id": [None]}, "dao_id"),
        ({"member": ["m1"]}, "member"),
        ({"member": ""}, "member"),
    ],
)
async def test_bad_filter_is_invalid_filter(hub: RunningHub, flt: Any, field: str) -> None:
    await expect_invalid_filter(hub, "dao", flt, field)
