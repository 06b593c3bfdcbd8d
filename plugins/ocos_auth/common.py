"""What the auth plugins share: refusals, credential fields, scopes, the clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ocos_hub import HubError
from ocos_hub.errors import first_field

# A scope as operators write them: `subscribe:blocks`, `publish:*`, `admin`, `identity:read_all`.
Scope = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.*-]+(:[A-Za-z0-9_.*-]+)?$")]

Fields = TypeVar("Fields", bound=BaseModel)


class CredentialFields(BaseModel):
    """Base of each method's in-band credential fields: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


def refuse(message: str, details: Any = None) -> HubError:
    """The one refusal of a credential a method recognised but does not accept."""
    return HubError("invalid_credentials", message, details)


def parse_fields(method: str, model: type[Fields], fields: Mapping[str, Any]) -> Fields:
    """Validate an `auth` request's fields; a missing or unknown one is `invalid_message`."""
    try:
        return model.model_validate(dict(fields))
    except ValidationError as exc:
        field = first_field(exc)
        problem = exc.errors(include_url=False)[0]
        text = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
        raise HubError("invalid_message", f"auth {method}: field {field!r}: {text}",
                       {"field": field}) from None


def utcnow() -> datetime:
    return datetime.now(UTC)


def presented_token(request: web.Request) -> str | None:
    """The bearer token of an HTTP request (`Authorization: Bearer`, or `?token=`)."""
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise refuse("Authorization must be 'Bearer <token>'")
        return value.strip()
    return request.query.get("token") or None
