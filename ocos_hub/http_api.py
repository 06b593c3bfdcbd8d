"""The HTTP companion API: publishing, topic schemas, backfill, health and readiness."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from ocos_hub.appkeys import HUB
from ocos_hub.auth import scope_allows
from ocos_hub.errors import HubError, first_field, validation_details
from ocos_hub.history import history_page
from ocos_hub.middleware import Handler

log = logging.getLogger("ocos_hub.http")


def error_response(exc: HubError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=exc.headers)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as the protocol's `{code, message, details?}` body; never a traceback."""
    try:
        return await handler(request)
    except HubError as exc:
        request.app[HUB].stats.http_refusals[exc.code] += 1
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error")
        return web.json_response({"code": code, "message": exc.reason}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items()
                                          if k.lower() == "allow"})
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return web.json_response(
            {"code": "internal_error", "message": "the server failed to handle this request"},
            status=500)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    topic: StrictStr
    event: StrictStr
    data: dict[str, Any]
    key: str | None = Field(None, min_length=1, max_length=200)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[EventIn] = Field(min_length=1)


async def read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError as exc:
        raise HubError("invalid_json", f"body is not valid JSON: {exc}") from None


async def publish_events(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    body = await read_json(request)
    try:
        if isinstance(body, dict) and "events" in body:
            events = BatchIn.model_validate(body).events
        else:
            events = [EventIn.model_validate(body)]
    except ValidationError as exc:
        raise HubError("invalid_message", f"field {first_field(exc)!r}: "
                       f"{exc.errors()[0]['msg']}", validation_details(exc)) from None
    if len(events) > hub.config.publish.max_batch:
        raise HubError("invalid_message", f"at most {hub.config.publish.max_batch} events "
                       "per request", {"max_batch": hub.config.publish.max_batch}, status=413)
    principal = await hub.identify(request)
    scopes = principal.scopes if principal else hub.anonymous_scopes
    for item in events:
        hub.topic(item.topic)
        if not scope_allows(scopes, f"publish:{item.topic}"):
            if principal is None:
                raise HubError("unauthenticated", f"publishing to {item.topic!r} needs "
                               "credentials with the publish scope")
            raise HubError("forbidden", f"principal {principal.id!r} lacks "
                           f"'publish:{item.topic}'")
    offsets = await hub.publish_many([(e.topic, e.event, e.data, e.key) for e in events])
    return web.json_response({"offsets": offsets})


async def list_topics(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return web.json_response({"topics": [topic.schema() for topic in hub.topics.values()]})


def _int_param(request: web.Request, name: str, default: int, minimum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HubError("invalid_message", f"query parameter {name!r} must be an integer",
                       {"field": name}) from None
    if value < minimum:
        raise HubError("invalid_message", f"query parameter {name!r} must be >= {minimum}",
                       {"field": name})
    return value


async def backfill(request: web.Request) -> web.Response:
    """Retained events after `since` (or before `before`, or the newest), as the socket
    would have sent them; the same pages as the `history` op (`ocos_hub.history`)."""
    hub = request.app[HUB]
    topic = hub.topic(request.match_info["topic"])
    principal = await hub.identify(request)
    scopes = principal.scopes if principal else hub.anonymous_scopes
    if not scope_allows(scopes, f"subscribe:{topic.name}"):
        raise HubError("unauthenticated" if principal is None else "forbidden",
                       f"reading {topic.name!r} needs 'subscribe:{topic.name}'")
    since = _int_param(request, "since", 0, 0) if "since" in request.query else None
    before = _int_param(request, "before", 1, 1) if "before" in request.query else None
    limit = min(_int_param(request, "limit", 100, 1), hub.config.history.max_replay)
    return web.json_response(await history_page(hub.broker, topic, principal, since=since,
                                                before=before, limit=limit))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    try:
        ready = not hub.shutting_down and await hub.broker.ready()
    except Exception:
        ready = False
    return web.json_response({"status": "ready" if ready else "unavailable"},
                             status=200 if ready else 503)


ROUTES = [
    web.post("/api/v1/events", publish_events),
    web.get("/api/v1/topics", list_topics),
    web.get("/api/v1/topics/{topic}/events", backfill),
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
]
