"""Value types shared by the first-party topics, so every topic spells an amount,
an address or a time the same way on the wire and in the JSON Schemas.

Each type carries a JSON Schema `format` (`decimal`, `address`, ...) that the generated
docs show, and the catalog's conventions: amounts are decimal strings (256-bit values do
not survive JSON numbers), times are RFC 3339 UTC, ids are strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints

from ocos_hub import TopicFilter

# Enum fields are validated by value: strict mode would demand enum instances from Python
# callers, while producers (HTTP, sockets, the simulator) send plain strings.
LAX = Strict(False)

# [0-9], not \d: pydantic's regex engine (for `pattern=`) takes \d as any Unicode digit.
_NO_SPACE = r"^\S+$"

DECIMAL_PATTERN = r"^(0|[1-9][0-9]{0,77})(\.[0-9]{1,78})?$"
TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$"


_DECIMAL = re.compile(DECIMAL_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


# Checked in code rather than with `pattern=` so that a producer reads what is expected
# instead of a regular expression; the pattern still goes into the JSON Schema.
def _decimal(value: str) -> str:
    if not _DECIMAL.fullmatch(value):
        raise ValueError("expected a non-negative decimal number as a string, like '1500.25' "
                         "(no sign, exponent or leading zeros, at most 78 integer digits)")
    return value


def _instant(value: str) -> str:
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError("expected an RFC 3339 UTC time, like '2025-06-01T12:00:00Z'")
    try:  # the pattern admits 2025-02-30
        instant(value)
    except ValueError:
        raise ValueError("not a real date and time") from None
    return value


def instant(value: str) -> datetime:
    """A `Timestamp` as an aware datetime (sub-microsecond digits are dropped)."""
    return datetime.fromisoformat(value)


def _fmt(name: str, example: str, pattern: str | None = None) -> Any:
    extra = {"format": name} if pattern is None else {"format": name, "pattern": pattern}
    return Field(json_schema_extra=extra, examples=[example])


Address = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=_NO_SPACE),
    _fmt("address", "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"),
]
"""An account or contract address, compared exactly (case matters)."""

Hash = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=_NO_SPACE),
    _fmt("hash", "0x8f3c5b1e0d7a49c2b6e1f0a3d5c7e9b1a2c4d6e8f0a1b3c5d7e9f1a2b3c4d5e6"),
]
"""A block or transaction hash."""

Token = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=_NO_SPACE),
    _fmt("token", "OCOS"),
]
"""A token, by contract address or symbol, compared exactly."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_SPACE)]
"""An identifier (proposal, DAO, pool, listing, ...): a non-empty string without spaces."""

DecimalStr = Annotated[
    str,
    AfterValidator(_decimal),
    _fmt("decimal", "1500.25", DECIMAL_PATTERN),
]
"""A non-negative decimal number as a string (`0`, `42`, `1500.25`), up to 78 integer
digits so that any 256-bit value fits. No sign, exponent or leading zeros."""

Timestamp = Annotated[
    str,
    AfterValidator(_instant),
    _fmt("date-time", "2025-06-01T12:00:00Z", TIMESTAMP_PATTERN),
]
"""An instant in RFC 3339, UTC (`Z`), with optional fractional seconds."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""Human-readable text (names, titles, reasons)."""

Uri = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$"),
    _fmt("uri", "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/1.json"),
]

Did = Annotated[
    str,
    StringConstraints(min_length=1, max_length=512, pattern=r"^did:[a-z0-9]+:\S+$"),
    _fmt("did", "did:ocos:7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"),
]
"""A W3C decentralized identifier (`did:<method>:<id>`)."""

Height = Annotated[int, Field(ge=0)]
"""A block height."""

Count = Annotated[int, Field(ge=0)]

Bps = Annotated[int, Field(ge=0, le=10_000)]
"""Basis points: 1/100 of a percent, 0 to 10000."""

T = TypeVar("T")

# A filter's list field: "any of these"; an empty list would match nothing, so it is refused.
AnyOf = Annotated[list[T], Field(min_length=1, max_length=1000)]


class EventData(BaseModel):
    """Base of every event model: unknown fields and loose types are refused.

    Fields named after Python keywords (`from`) use an alias, and the alias is the name on
    the wire both ways.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, serialize_by_alias=True,
        validate_by_alias=True, validate_by_name=False,
    )


def as_set(values: Iterable[T] | None) -> frozenset[T] | None:
    """A filter list as a set for O(1) membership on the delivery path; None when unset."""
    return None if values is None else frozenset(values)



class StrictFilter(TopicFilter):
    """Base of the catalog's filters: a value of the wrong type (`"5"` for a height) is an
    `invalid_filter`, never silently converted."""

    model_config = ConfigDict(strict=True)
