"""The generated documents as routes of the hub: `/docs`, `/asyncapi.json`,
`/openapi.json`, `/schema.graphql` (on unless `[server] docs = false`).

Each hub's documents are built once, on first request (hooks are never called per
request); only the server address is filled in per request, from the `Host` header and
`X-Forwarded-Proto` (set by a TLS-terminating proxy), so the documents name the URL
clients actually use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from aiohttp import web

from ocos_hub.appkeys import HUB
from ocos_hub.docs.asyncapi import Endpoint, asyncapi_document, server_object
from ocos_hub.docs.catalog import Catalog
from ocos_hub.docs.graphql import graphql_sdl
from ocos_hub.docs.html import html_page, with_socket_url
from ocos_hub.docs.openapi import openapi_document

if TYPE_CHECKING:
    from ocos_hub.hub import Hub

PLACEHOLDER = Endpoint("http", "localhost")


@dataclass(frozen=True)
class Documents:
    """A hub's documents, with a placeholder server to replace per reader."""

    catalog: Catalog
    asyncapi: dict[str, Any]
    openapi: dict[str, Any]
    graphql: str
    html: str

    @classmethod
    def build(cls, hub: Hub) -> Documents:
        catalog = Catalog.from_hub(hub)
        openapi = openapi_document(catalog, PLACEHOLDER)
        return cls(catalog, asyncapi_document(catalog, PLACEHOLDER), openapi,
                   graphql_sdl(catalog), html_page(catalog, openapi["paths"]))

    def asyncapi_for(self, endpoint: Endpoint) -> dict[str, Any]:
        return {**self.asyncapi, "servers": {"hub": server_object(self.catalog, endpoint)}}

    def openapi_for(self, endpoint: Endpoint) -> dict[str, Any]:
        return {**self.openapi, "servers": [{"url": endpoint.http}]}

    def html_for(self, endpoint: Endpoint) -> str:
        return with_socket_url(self.html, endpoint.socket(self.catalog.ws_path))


_built: WeakKeyDictionary[Hub, Documents] = WeakKeyDictionary()


def documents(hub: Hub) -> Documents:
    """The hub's documents, built on first use."""
    found = _built.get(hub)
    if found is None:
        found = _built[hub] = Documents.build(hub)
    return found


def endpoint_of(request: web.Request) -> Endpoint:
    """The address the reader used, as far as the request (and a proxy) tells."""
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return Endpoint("https" if proto.lower() in ("https", "wss") else "http", request.host)


def _json(value: Any) -> web.Response:
    return web.Response(text=json.dumps(value, indent=1, ensure_ascii=False),
                        content_type="application/json")


async def asyncapi_json(request: web.Request) -> web.Response:
    """The socket's protocol as AsyncAPI 3.0."""
    return _json(documents(request.app[HUB]).asyncapi_for(endpoint_of(request)))


async def openapi_json(request: web.Request) -> web.Response:
    """The HTTP API as OpenAPI 3.1."""
    return _json(documents(request.app[HUB]).openapi_for(endpoint_of(request)))


async def schema_graphql(request: web.Request) -> web.Response:
    """Topics and event kinds as GraphQL SDL."""
    return web.Response(text=documents(request.app[HUB]).graphql, content_type="text/plain")


async def docs_page(request: web.Request) -> web.Response:
    """The readable HTML page."""
    return web.Response(text=documents(request.app[HUB]).html_for(endpoint_of(request)),
                        content_type="text/html")


ROUTES = [
    web.get("/asyncapi.json", asyncapi_json),
    web.get("/openapi.json", openapi_json),
    web.get("/schema.graphql", schema_graphql),
    web.get("/docs", docs_page),
]
