"""The `governance` topic: on-chain proposals, their votes, status changes and execution."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, model_validator

from ocos_hub import Event, Topic, hookimpl
from ocos_topics._types import (
    LAX,
    Address,
    AnyOf,
    DecimalStr,
    EventData,
    Hash,
    Id,
    StrictFilter,
    Text,
    Timestamp,
    as_set,
    instant,
)


class VoteChoice(StrEnum):
    """What a vote says."""

    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


class ProposalState(StrEnum):
    """Lifecycle of a proposal: pending until voting starts, active while it runs, then
    passed or rejected; a passed proposal is queued, then executed or failed. Cancelled
    can happen at any point before execution."""

    PENDING = "pending"
    ACTIVE = "active"
    PASSED = "passed"
    REJECTED = "rejected"
    QUEUED = "queued"
    EXECUTED = "executed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ProposalCreated(EventData):
    """A proposal was submitted."""

    proposal_id: Id = Field(description="Identifier of the proposal.")
    title: Text = Field(description="Short title of the proposal.")
    proposer: Address = Field(description="Account that submitted it.")
    voting_starts: Timestamp = Field(description="When voting opens.")
    voting_ends: Timestamp = Field(description="When voting closes; after `voting_starts`.")
    dao_id: Id | None = Field(
        None, description="DAO the proposal belongs to (see the `dao` topic), if any.")

    @model_validator(mode="after")
    def _window(self) -> ProposalCreated:
        if instant(self.voting_ends) <= instant(self.voting_starts):
            raise ValueError("voting_ends must be after voting_starts")
        return self


class VoteCast(EventData):
    """A vote was cast on a proposal."""

    proposal_id: Id = Field(description="Proposal voted on.")
    voter: Address = Field(description="Account that voted.")
    choice: Annotated[VoteChoice, LAX] = Field(description="The vote.")
    weight: DecimalStr = Field(description="Voting power behind the vote.")


class ProposalStatus(EventData):
    """A proposal's status changed."""

    proposal_id: Id = Field(description="Proposal whose status changed.")
    status: Annotated[ProposalState, LAX] = Field(description="The new status.")


class ProposalExecuted(EventData):
    """A passed proposal's actions were executed on chain."""

    proposal_id: Id = Field(description="Proposal executed.")
    tx_hash: Hash = Field(description="Transaction that executed it.")
    success: bool = Field(description="Whether every action succeeded.")


class GovernanceFilter(StrictFilter):
    """Every field given must match; an event whose kind does not carry a field's data does
    not pass when that field is set.

    - `proposal_id` keeps events about any of these proposals (every kind carries one).
    - `voter` keeps `vote.cast` events by that account.
    """

    proposal_id: AnyOf[Id] | None = Field(
        None, description="Any of these proposals (every kind).")
    voter: Address | None = Field(None, description="Votes by this account (`vote.cast` only).")

    _proposals: frozenset[str] | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        self._proposals = as_set(self.proposal_id)

    def matches(self, event: Event) -> bool:
        data = event.data
        if self._proposals is not None and data.get("proposal_id") not in self._proposals:
            return False
        return self.voter is None or (event.kind == "vote.cast" and data["voter"] == self.voter)


topic = Topic(
    name="governance",
    description="On-chain governance: proposals as they are created, every vote, each "
    "status change and the execution of passed proposals.",
    kinds={
        "proposal.created": ProposalCreated,
        "vote.cast": VoteCast,
        "proposal.status": ProposalStatus,
        "proposal.executed": ProposalExecuted,
    },
    filter_model=GovernanceFilter,
    examples={
        "proposal.created": {
            "proposal_id": "prop-42",
            "title": "Raise the validator set to 128",
            "proposer": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
            "voting_starts": "2025-06-01T12:00:00Z",
            "voting_ends": "2025-06-08T12:00:00Z",
            "dao_id": "dao-ocos",
        },
        "vote.cast": {
            "proposal_id": "prop-42",
            "voter": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "choice": "yes",
            "weight": "125000.5",
        },
        "proposal.status": {"proposal_id": "prop-42", "status": "passed"},
        "proposal.executed": {
            "proposal_id": "prop-42",
            "tx_hash": "0x3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c",
            "success": True,
        },
    },
)


@hookimpl
def ocos_topics(config: Any) -> list[Topic]:
    return [topic]
