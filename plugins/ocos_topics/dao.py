"""The `dao` topic: DAOs, their membership and the decisions they record."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, PrivateAttr

from ocos_hub import Event, Topic, hookimpl
from ocos_topics._types import LAX, Address, AnyOf, EventData, Id, StrictFilter, Text, as_set


class MemberRole(StrEnum):
    """A member's role in a DAO, from most to least powerful."""

    OWNER = "owner"
    ADMIN = "admin"
    COUNCIL = "council"
    MEMBER = "member"
    OBSERVER = "observer"


class DecisionOutcome(StrEnum):
    """How a DAO decided."""

    APPROVED = "approved"
    REJECTED = "rejected"
    DEFERRED = "deferred"


class DaoCreated(EventData):
    """A DAO was created; its creator is its first member (owner)."""

    dao_id: Id = Field(description="Identifier of the DAO.")
    name: Text = Field(description="Display name.")
    creator: Address = Field(description="Account that created it.")


class MemberJoined(EventData):
    """An account joined a DAO."""

    dao_id: Id = Field(description="DAO joined.")
    member: Address = Field(description="Account that joined.")
    role: Annotated[MemberRole, LAX] = Field(description="Role it joined with.")


class MemberLeft(EventData):
    """An account left a DAO (or was removed)."""

    dao_id: Id = Field(description="DAO left.")
    member: Address = Field(description="Account that left.")


class MemberRoleChanged(EventData):
    """A member's role changed."""

    dao_id: Id = Field(description="DAO of the member.")
    member: Address = Field(description="Account whose role changed.")
    role: Annotated[MemberRole, LAX] = Field(description="The new role.")
    old_role: Annotated[MemberRole, LAX] | None = Field(None, description="The previous role.")


class DecisionRecorded(EventData):
    """A DAO recorded a decision."""

    dao_id: Id = Field(description="DAO that decided.")
    decision_id: Id = Field(description="Identifier of the decision.")
    outcome: Annotated[DecisionOutcome, LAX] = Field(description="What was decided.")
    proposal_id: Id | None = Field(
        None, description="Governance proposal the decision came from, if any.")


class DaoFilter(StrictFilter):
    """Every field given must match; an event whose kind does not carry a field's data does
    not pass when that field is set.

    - `dao_id` keeps events about any of these DAOs (every kind carries one).
    - `member` keeps `member.joined`, `member.left` and `member.role_changed` events of that
      account (`dao.created` carries a `creator`, not a member, and does not pass).
    """

    dao_id: AnyOf[Id] | None = Field(None, description="Any of these DAOs (every kind).")
    member: Address | None = Field(
        None, description="Membership events of this account (`member.*` kinds only).")

    _daos: frozenset[str] | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        self._daos = as_set(self.dao_id)

    def matches(self, event: Event) -> bool:
        data = event.data
        if self._daos is not None and data.get("dao_id") not in self._daos:
            return False
        return self.member is None or data.get("member") == self.member


topic = Topic(
    name="dao",
    description="Decentralised autonomous organisations: creation, members joining, "
    "leaving and changing roles, and the decisions each DAO records.",
    kinds={
        "dao.created": DaoCreated,
        "member.joined": MemberJoined,
        "member.left": MemberLeft,
        "member.role_changed": MemberRoleChanged,
        "decision.recorded": DecisionRecorded,
    },
    filter_model=DaoFilter,
    examples={
        "dao.created": {
            "dao_id": "dao-ocos",
            "name": "OCOS Builders",
            "creator": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
        },
        "member.joined": {
            "dao_id": "dao-ocos",
            "member": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "role": "member",
        },
        "member.left": {
            "dao_id": "dao-ocos",
            "member": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
        },
        "member.role_changed": {
            "dao_id": "dao-ocos",
            "member": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "role": "council",
            "old_role": "member",
        },
        "decision.recorded": {
            "dao_id": "dao-ocos",
            "decision_id": "dec-7",
            "outcome": "approved",
            "proposal_id": "prop-42",
        },
    },
)


@hookimpl
def ocos_topics(config: Any) -> list[Topic]:
    return [topic]
