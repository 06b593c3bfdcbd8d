"""The `identity` topic: decentralized identities, KYC, soulbound tokens and reputation.

These events are personal: each reaches only its subject (by principal id or wallet
address) unless the principal holds `identity:read_all` (or `admin`). Anonymous
connections receive none, whatever scopes the operator grants to `anonymous`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, PrivateAttr

from ocos_hub import Event, Principal, Topic, hookimpl
from ocos_hub.auth import scope_allows
from ocos_topics._types import LAX, Address, AnyOf, Did, EventData, Id, StrictFilter, Text, as_set

READ_ALL = "identity:read_all"


class KycState(StrEnum):
    """Where a subject's KYC check stands."""

    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    EXPIRED = "expired"


class IdentityRegistered(EventData):
    """An account registered a decentralized identifier."""

    subject: Address = Field(description="Account the identity belongs to.")
    did: Did = Field(description="The registered DID.")


class KycStatus(EventData):
    """A subject's KYC status changed."""

    subject: Address = Field(description="Account checked.")
    status: Annotated[KycState, LAX] = Field(description="The new KYC status.")
    provider: Id = Field(description="KYC provider that decided.")


class _SoulboundChange(EventData):
    subject: Address = Field(description="Account holding the token.")
    token_id: Id = Field(description="Identifier of the soulbound token.")
    issuer: Address = Field(description="Account that issued it.")
    kind: Id = Field(description="What the token attests (`membership`, `kyc`, `contributor`).")


class SoulboundIssued(_SoulboundChange):
    """A non-transferable (soulbound) token was issued to a subject."""


class SoulboundRevoked(_SoulboundChange):
    """A soulbound token was revoked by its issuer."""

    reason: Text | None = Field(None, description="Why it was revoked.")


class ReputationChanged(EventData):
    """A subject's reputation score changed."""

    subject: Address = Field(description="Account whose score changed.")
    old: int = Field(description="Score before the change.")
    new: int = Field(description="Score after the change.")
    reason: Text = Field(description="What caused the change.")


class IdentityFilter(StrictFilter):
    """Every field given must match; an event that does not carry a field's data does not
    pass when that field is set.

    - `subject` keeps events about any of these accounts (every kind carries a subject).

    The filter only narrows what the principal may see: events about other subjects stay
    invisible without `identity:read_all`, whatever the filter says.
    """

    subject: AnyOf[Address] | None = Field(
        None, description="Any of these subjects (every kind).")

    _subjects: frozenset[str] | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        self._subjects = as_set(self.subject)

    def matches(self, event: Event) -> bool:
        return self._subjects is None or event.data.get("subject") in self._subjects


def visible(principal: Principal | None, event: Event) -> bool:
    """An identity event reaches its subject only (by principal id or wallet `address`
    attribute), or principals holding `identity:read_all`; never anonymous connections."""
    if principal is None:
        return False
    subject = event.data.get("subject")
    if subject is not None and subject in (principal.id, principal.attributes.get("address")):
        return True
    return scope_allows(principal.scopes, READ_ALL)


SUBJECT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
ISSUER = "Iss6erPq2Lm8Nx4Kw7Jv3Hu9Gt5Fs1Dr6Ce2Bq8Ap4Z"

topic = Topic(
    name="identity",
    description="Decentralized identity: DID registrations, KYC status, soulbound tokens and "
    "reputation. Each event reaches only its subject (the principal's id or wallet address) "
    "unless the principal holds `identity:read_all` or `admin`; anonymous connections "
    "receive none.",
    kinds={
        "identity.registered": IdentityRegistered,
        "kyc.status": KycStatus,
        "soulbound.issued": SoulboundIssued,
        "soulbound.revoked": SoulboundRevoked,
        "reputation.changed": ReputationChanged,
    },
    filter_model=IdentityFilter,
    examples={
        "identity.registered": {
            "subject": SUBJECT,
            "did": f"did:ocos:{SUBJECT}",
        },
        "kyc.status": {"subject": SUBJECT, "status": "verified", "provider": "veriff"},
        "soulbound.issued": {
            "subject": SUBJECT,
            "token_id": "sbt-88",
            "issuer": ISSUER,
            "kind": "contributor",
        },
        "soulbound.revoked": {
            "subject": SUBJECT,
            "token_id": "sbt-88",
            "issuer": ISSUER,
            "kind": "contributor",
            "reason": "membership ended",
        },
        "reputation.changed": {
            "subject": SUBJECT,
            "old": 120,
            "new": 135,
            "reason": "proposal executed",
        },
    },
    visible=visible,
)


@hookimpl
def ocos_topics(config: Any) -> list[Topic]:
    return [topic]
