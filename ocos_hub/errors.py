"""The one error type a user can cause, carrying the protocol's code.

Everything the hub refuses is raised as a `HubError`; the socket turns it into an `error`
frame and the HTTP API into a JSON body with the matching status. Anything else that
escapes a handler is a bug and is reported to the client as `internal_error` only.
"""

from __future__ import annotations

from typing import Any

# HTTP status for each protocol code (the socket ignores it).
STATUS_BY_CODE: dict[str, int] = {
    "invalid_json": 400,
    "invalid_message": 400,
    "unknown_type": 400,
    "unknown_topic": 404,
    "invalid_filter": 400,
    "already_subscribed": 409,
    "not_subscribed": 409,
    "too_many_subscriptions": 429,
    "unauthenticated": 401,
    "forbidden": 403,
    "invalid_credentials": 401,
    "token_expired": 401,
    "rate_limited": 429,
    "invalid_event": 422,
    "unknown_event": 422,
    "slow_consumer": 503,
    "unavailable": 503,
    "internal_error": 500,
}


class HubError(Exception):
    """A refusal with a protocol error code, a human message and optional details."""

    def __init__(
        self,
        code: str,
        message: str,
        details: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = status or STATUS_BY_CODE.get(code, 400)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The `{code, message, details?}` object shared by socket and HTTP errors."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


def validation_details(exc: Any) -> list[dict[str, Any]]:
    """Pydantic validation errors as plain JSON: where, what, and the message."""
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "type": err.get("type", ""),
            "msg": err.get("msg", ""),
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]


def first_field(exc: Any) -> str:
    """The dotted path of the first invalid field of a pydantic ValidationError."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return ""
    return ".".join(str(part) for part in errors[0].get("loc", ()))
