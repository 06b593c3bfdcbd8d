"""What a hub offers, gathered once from its enabled plugins for every generated document.

The AsyncAPI, OpenAPI, GraphQL and HTML documents are all built from a `Catalog`, so they
agree with each other and with the running hub: topics and their models, request types
(core and extension) with their request models, auth methods, plugin routes. JSON Schemas
come from pydantic in one pass over every model (`model_schemas`), which names each
schema once and disambiguates models that share a class name.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ocos_hub import __version__
from ocos_hub.auth import API_KEY, TOKEN
from ocos_hub.core_ops import CORE_OPERATIONS
from ocos_hub.docs.frames import CORE_REPLIES, CORE_SUMMARIES
from ocos_hub.errors import STATUS_BY_CODE
from ocos_hub.operations import Request

if TYPE_CHECKING:
    from ocos_hub.hub import Hub
    from ocos_hub.topics import Topic

TITLE = "OCOS Hub"
DESCRIPTION = (
    "Real-time events of OCOS-Chain over one WebSocket: subscribe to topics with filters, "
    "receive every matching event once and in order, and resume after a disconnect with "
    "`since: {offset, epoch}`."
)
# Codes the core adds to the protocol's table (docs/protocol.md), with their HTTP status.
EXTRA_CODES = {"unsupported_protocol": 400, "not_found": 404, "method_not_allowed": 405}


def summary(obj: Any) -> str:
    """The first paragraph of an object's own docstring, on one line ("" without one)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


@dataclass(frozen=True)
class OperationInfo:
    """A request type: its request model, and its ack's fields when the op declares them."""

    name: str
    request_model: type[Request]
    reply_model: type[BaseModel] | None
    summary: str
    core: bool


@dataclass(frozen=True)
class AuthInfo:
    """An enabled auth method: its in-band fields and the handshake credentials it reads."""

    name: str
    credentials_model: type[BaseModel] | None
    handshake: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class RouteInfo:
    """An HTTP route a plugin added, as far as aiohttp's route definition tells."""

    method: str
    path: str
    summary: str
    description: str


@dataclass
class Catalog:
    """Everything the documents describe, independent of how the hub is reached."""

    version: str
    ws_path: str
    heartbeat: float
    max_message_bytes: int
    max_subscriptions: int
    anonymous: list[str]
    require_auth: bool
    enabled: list[str]
    where: bool
    serves_docs: bool
    topics: list[Topic]
    operations: list[OperationInfo]
    auth_methods: list[AuthInfo]
    routes: list[RouteInfo]
    openapi_paths: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_hub(cls, hub: Hub) -> Catalog:
        server = hub.config.server
        core = {op.name for op in CORE_OPERATIONS}
        operations = [
            OperationInfo(
                name, op.request_model,
                op.reply_model or (CORE_REPLIES.get(name) if name in core else None),
                (CORE_SUMMARIES.get(name) if name in core else None) or summary(type(op)),
                name in core)
            for name, op in hub.operations.items()
        ]
        methods = [AuthInfo(name, method.credentials_model, method.handshake_credentials,
                            summary(type(method)))
                   for name, method in hub.auth_methods.items()]
        openapi_paths: dict[str, dict[str, Any]] = {}
        for _, paths in hub.plugins.each("ocos_openapi"):
            for path, item in paths.items():
                openapi_paths.setdefault(path, {}).update(item)
        return cls(
            version=__version__,
            ws_path=server.ws_path,
            heartbeat=server.heartbeat,
            max_message_bytes=server.max_message_bytes,
            max_subscriptions=server.max_subscriptions,
            anonymous=sorted(hub.config.access.anonymous),
            require_auth=hub.config.access.require_auth,
            enabled=list(hub.config.plugins.enabled),
            where=hub.where is not None,
            serves_docs=server.docs,
            topics=list(hub.topics.values()),
            operations=operations,
            auth_methods=methods,
            routes=plugin_routes(hub.routes),
            openapi_paths=openapi_paths,
        )

    def handshake_kinds(self) -> set[str]:
        """`TOKEN` / `API_KEY`: the handshake credentials some enabled method reads."""
        return {kind for method in self.auth_methods for kind in method.handshake}

    def error_codes(self) -> dict[str, int]:
        """Every error code the core may answer with, and its HTTP status."""
        return {**STATUS_BY_CODE, **EXTRA_CODES}


def plugin_routes(routes: Iterable[web.AbstractRouteDef]) -> list[RouteInfo]:
    found = []
    for route in routes:
        if isinstance(route, web.RouteDef):
            methods = ["get"] if route.method == "*" else [route.method.lower()]
            doc = inspect.cleandoc(route.handler.__doc__ or "")
            head, _, rest = doc.partition("\n\n")
            for method in methods:
                found.append(RouteInfo(method, route.path, " ".join(head.split()), rest.strip()))
        elif isinstance(route, web.StaticDef):
            prefix = route.prefix.rstrip("/")
            found.append(RouteInfo("get", f"{prefix}/{{filename}}",
                                   f"Static files under {prefix}/", ""))
    return found


def model_schemas(
    models: Iterable[type[BaseModel]], ref_prefix: str
) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """The JSON Schema of each model (mostly a `$ref`) and the named schemas they refer to.

    One generation for all, so that a model used in many places has one named schema
    and two models with one class name get distinct names.
    """
    unique = list(dict.fromkeys(models))
    if not unique:
        return {}, {}
    refs, top = models_json_schema([(model, "validation") for model in unique], by_alias=True,
                                   ref_template=ref_prefix + "{model}")
    return {model: refs[(model, "validation")] for model in unique}, dict(top.get("$defs", {}))


HANDSHAKE_LABELS = {
    TOKEN: "`Authorization: Bearer <token>` header, or `?token=` in the URL",
    API_KEY: "`X-API-Key: <key>` header, or `?api_key=` in the URL",
}
