"""The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`).

The core's routes are described here (this module is their documentation); a plugin's
routes are described by its `ocos_openapi` hook, or else listed from aiohttp's route
definitions with the handler's docstring. Publish bodies are typed per topic and kind
from the event models, so a client generator gets one type per kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from ocos_hub.docs.asyncapi import Endpoint, security_schemes
from ocos_hub.docs.catalog import DESCRIPTION, TITLE, Catalog, model_schemas
from ocos_hub.docs.frames import ErrorBody, EventFrame, HistoryAck, TopicList
from ocos_hub.http_api import EventIn
from ocos_hub.protocol import PROTOCOL

VERSION = "3.1.0"
SCHEMAS = "#/components/schemas/"
ERROR = {"$ref": "#/components/responses/Error"}
DOC_PATHS = ("/asyncapi.json", "/openapi.json", "/schema.graphql", "/docs")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): ERROR for status in statuses}


def _models_in(node: Any, found: list[type[BaseModel]]) -> None:
    if isinstance(node, type) and issubclass(node, BaseModel):
        found.append(node)
    elif isinstance(node, dict):
        for value in node.values():
            _models_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _models_in(value, found)


def _with_refs(node: Any, refs: dict[type[BaseModel], dict[str, Any]]) -> Any:
    """A plugin's path items with each pydantic model class replaced by its schema."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return refs[node]
    if isinstance(node, dict):
        return {key: _with_refs(value, refs) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_refs(value, refs) for value in node]
    return node


def _path_params(path: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)]


def _clean_path(path: str) -> str:
    """aiohttp's `{name:regex}` as OpenAPI's `{name}`."""
    return re.sub(r"\{([^}:]+):[^}]*\}", r"{\1}", path)


def _operation_ids(paths: dict[str, dict[str, Any]]) -> None:
    seen: set[str] = set()
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in METHODS or "operationId" in operation:
                continue
            base = method + "".join(part.title() for part in re.findall(r"[A-Za-z0-9]+", path))
            name, n = base, 2
            while name in seen:
                name, n = f"{base}{n}", n + 1
            seen.add(name)
            operation["operationId"] = name


def _publish_variants(catalog: Catalog, refs: dict[type[BaseModel], dict[str, Any]],
                      named: dict[str, Any]) -> list[dict[str, Any]]:
    base_ref = refs[EventIn]["$ref"].rsplit("/", 1)[-1]
    base = named[base_ref]
    variants = []
    for topic in catalog.topics:
        for kind, model in topic.kinds.items():
            props = dict(base["properties"])
            props["topic"] = {"const": topic.name}
            props["event"] = {"const": kind}
            props["data"] = refs[model]
            variants.append({"type": "object", "title": f"{topic.name} {kind}",
                             "properties": props, "required": base.get("required", []),
                             "additionalProperties": False})
    return variants


def openapi_document(catalog: Catalog, endpoint: Endpoint) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a hub reached at `endpoint`."""
    extra: list[type[BaseModel]] = []
    _models_in(catalog.openapi_paths, extra)
    kinds = [model for topic in catalog.topics for model in topic.kinds.values()]
    refs, named = model_schemas([ErrorBody, EventIn, EventFrame, HistoryAck, TopicList,
                                 *kinds, *extra], SCHEMAS)
    schemes = security_schemes(catalog.handshake_kinds())
    optional: list[dict[str, list[str]]] = [{}] if not catalog.require_auth else []
    security = optional + [{name: []} for name in schemes]
    topic_names = [topic.name for topic in catalog.topics]

    variants = _publish_variants(catalog, refs, named)
    one = {"oneOf": variants} if variants else refs[EventIn]
    named["PublishEvent"] = {**one, "description": "One event: `topic`, `event` (the kind), "
                             "`data` (the kind's model) and an optional idempotency `key`."}
    named["PublishBatch"] = {
        "type": "object", "required": ["events"], "additionalProperties": False,
        "properties": {"events": {"type": "array", "minItems": 1,
                                  "items": {"$ref": SCHEMAS + "PublishEvent"}}}}
    topic_param = {"name": "topic", "in": "path", "required": True,
                   "schema": {"type": "string", **({"enum": topic_names} if topic_names else {})}}

    def query(name: str, minimum: int, description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": {"type": "integer", "minimum": minimum}}

    docs = "Generated documentation"
    paths: dict[str, dict[str, Any]] = {
        "/api/v1/events": {"post": {
            "summary": "Publish one event or a batch",
            "description": "Needs a principal with `publish:<topic>` for every topic. `data` "
            "is validated against the kind's model; a batch is all or nothing. A repeated "
            "`key` within the dedup window returns the first offset and publishes nothing.",
            "tags": ["publish"], "security": security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [{"$ref": SCHEMAS + "PublishEvent"},
                          {"$ref": SCHEMAS + "PublishBatch"}]}}}},
            "responses": {
                "200": _json({"type": "object", "required": ["offsets"], "properties": {
                    "offsets": {"type": "array", "items": {"type": "integer", "minimum": 1},
                                "description": "One offset per event, in order."}}},
                    "Published."),
                **_errors(400, 401, 403, 404, 413, 422, 503)}}},
        "/api/v1/topics": {"get": {
            "summary": "Topics with their event kinds, JSON Schemas and filter schemas",
            "tags": ["topics"],
            "responses": {"200": _json(refs[TopicList], "The topics.")}}},
        "/api/v1/topics/{topic}/events": {"get": {
            "summary": "Retained events of a topic (REST backfill)",
            "description": "The same event objects as on the socket. With `since`: events "
            "after it, paging forward; with `before`: events before it, paging back; with "
            "neither: the newest. Needs `subscribe:<topic>`.",
            "tags": ["topics"], "security": security,
            "parameters": [topic_param,
                           query("since", 0, "Events after this offset."),
                           query("before", 1, "Events before this offset."),
                           query("limit", 1, "Most events in the page (default 100).")],
            "responses": {"200": _json(refs[HistoryAck], "A page of events."),
                          **_errors(400, 401, 403, 404)}}},
        "/healthz": {"get": {
            "summary": "Liveness", "tags": ["health"],
            "responses": {"200": _json({"type": "object", "properties": {
                "status": {"const": "ok"}}}, "The process answers.")}}},
        "/readyz": {"get": {
            "summary": "Readiness: the broker and stores are reachable", "tags": ["health"],
            "responses": {
                "200": _json({"type": "object", "properties": {"status": {"const": "ready"}}},
                             "Ready."),
                "503": _json({"type": "object", "properties": {
                    "status": {"const": "unavailable"}}}, "Not ready, or shutting down.")}}},
        catalog.ws_path: {"get": {
            "summary": f"The WebSocket (subprotocol `{PROTOCOL}`)",
            "description": "Upgrade to a WebSocket; the protocol on it is in "
            "`/asyncapi.json`. Refusals before the upgrade carry the JSON error body.",
            "tags": ["socket"], "security": security,
            "responses": {"101": {"description": "Switching protocols."},
                          **_errors(400, 401, 403, 429, 503)}}},
        "/asyncapi.json": {"get": {"summary": "This hub's socket as AsyncAPI 3.0",
                                   "tags": ["docs"], "responses": {"200": _json(
                                       {"type": "object"}, docs)}}},
        "/openapi.json": {"get": {"summary": "The HTTP API as OpenAPI 3.1", "tags": ["docs"],
                                  "responses": {"200": _json({"type": "object"}, docs)}}},
        "/schema.graphql": {"get": {
            "summary": "Topics and event kinds as GraphQL SDL", "tags": ["docs"],
            "responses": {"200": {"description": docs, "content": {
                "text/plain": {"schema": {"type": "string"}}}}}}},
        "/docs": {"get": {
            "summary": "Readable documentation of this hub", "tags": ["docs"],
            "responses": {"200": {"description": docs, "content": {
                "text/html": {"schema": {"type": "string"}}}}}}},
    }
    if not catalog.serves_docs:
        for path in DOC_PATHS:
            del paths[path]
    for route in catalog.routes:
        path = _clean_path(route.path)
        operation: dict[str, Any] = {"summary": route.summary or f"{route.method.upper()} "
                                     f"{path}", "tags": ["plugins"]}
        if route.description:
            operation["description"] = route.description
        params = _path_params(route.path)
        if params:
            operation["parameters"] = params
        paths.setdefault(path, {}).setdefault(route.method, operation)
    for path, item in _with_refs(catalog.openapi_paths, refs).items():
        paths.setdefault(_clean_path(path), {}).update(item)
    for item in paths.values():
        for method, operation in item.items():
            if method in METHODS:
                operation.setdefault("responses", {
                    "200": {"description": "Success."}, "default": ERROR})
    _operation_ids(paths)

    components: dict[str, Any] = {
        "schemas": named,
        "responses": {"Error": _json(refs[ErrorBody], "The `{code, message, details}` body "
                                     "of every refusal (docs/protocol.md).")},
    }
    if schemes:
        components["securitySchemes"] = {
            name: ({"type": "http", "scheme": "bearer", "description": scheme["description"]}
                   if scheme["type"] == "http" else
                   {"type": "apiKey", "name": scheme["name"], "in": scheme["in"],
                    "description": scheme["description"]})
            for name, scheme in schemes.items()}
    return {
        "openapi": VERSION,
        "info": {"title": f"{TITLE} HTTP API", "version": catalog.version,
                 "description": DESCRIPTION + " This is the HTTP companion API; the socket "
                 "is described in `/asyncapi.json`.",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": endpoint.http}],
        "tags": [{"name": name} for name in _tags(paths.values())],
        "paths": paths,
        "components": components,
    }


def _tags(items: Iterable[dict[str, Any]]) -> list[str]:
    found: dict[str, None] = {}
    for item in items:
        for operation in item.values():
            if isinstance(operation, dict):
                for tag in operation.get("tags", ()):
                    found.setdefault(tag)
    return list(found)
