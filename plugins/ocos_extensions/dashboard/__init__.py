"""The `dashboard` extension: a live web dashboard served by the hub itself.

One page at `[plugins.dashboard] path` (default `/`) and its static assets, all shipped in
this package (`static/`), so an operator on a closed network needs nothing but
`pip install`: no CDN, no build step. The page is a client of protocol v1 like any
other: it opens the hub's socket, subscribes, and resumes with `since` after a
disconnect.

The page carries its settings in a JSON block (the socket path, topics, token decimals),
filled in per request, because `[server] ws_path` belongs to the core's config, which the
`ocos_routes` hook does not receive. Assets live under a path that names a digest of
their contents, so browsers may keep them forever and a new release is fetched at once;
the page itself is revalidated on every load.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ocos_hub import __version__, hookimpl
from ocos_hub.appkeys import HUB

PAGE = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
IMMUTABLE = "public, max-age=31536000, immutable"
_SLOT = re.compile(r"\{\{(title|assets|settings)\}\}")  # what index.html leaves to fill in
# A Host header that can safely go into the Content-Security-Policy (no `;`, no spaces).
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


class DashboardConfig(BaseModel):
    """`[plugins.dashboard]`."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        "/", pattern=r"^/[A-Za-z0-9._~\-/]*$",
        description="Where the page is served; its assets go under `<path>/static/`.")
    title: str = Field(
        "OCOS Hub", min_length=1, max_length=120, description="Title of the page.")
    topics: list[str] | None = Field(
        None, description="Topics subscribed when the page opens; the user may pick others "
        "among those the connection may see. Default: every one of them.")
    rewind: int = Field(
        300, ge=0, le=10_000, description="Retained events of each topic shown when the "
        "page opens (the `rewind` of its first subscribe); 0 starts with live events only.")
    max_items: int = Field(
        100, ge=10, le=1000, description="Rows kept in each list of the page.")
    chart_window: float = Field(
        300.0, ge=30, le=86_400, description="Seconds of history the analytics charts show.")
    native_token: str = Field(
        "OCOS", min_length=1, max_length=32,
        description="Token of transaction values, fees and vote weights.")
    token_decimals: dict[str, int] = Field(
        default_factory=lambda: {"OCOS": 18, "USDC": 6, "WETH": 18, "WBTC": 8, "DAI": 18},
        description="Decimals of the tokens the page shows: amounts on the wire are base "
        "units, and the catalog does not say a token's decimals. Others are shown raw.")

    @field_validator("token_decimals")
    @classmethod
    def _decimals_in_range(cls, value: dict[str, int]) -> dict[str, int]:
        for token, decimals in value.items():
            if not 0 <= decimals <= 77:
                raise ValueError(f"{token}: decimals must be between 0 and 77")
        return value


def base_path(path: str) -> str:
    """The folder of the page (`/dash` -> `/dash/`), where its assets go."""
    return path if path.endswith("/") else path + "/"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compression does not pay
    content_type: str
    etag: str


def _asset(name: str, body: bytes) -> Asset:
    packed = gzip.compress(body, mtime=0)
    suffix = name[name.rfind("."):]
    return Asset(body, packed if len(packed) < len(body) * 0.9 else None,
                 CONTENT_TYPES.get(suffix, "application/octet-stream"),
                 '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def load_assets() -> dict[str, Asset]:
    """Every file of `static/`, read once: they are a few tens of kilobytes."""
    folder = files(__name__).joinpath("static")
    return {item.name: _asset(item.name, item.read_bytes())
            for item in folder.iterdir() if item.is_file() and not item.name.startswith(".")}


class Dashboard:
    """The page and its assets for one hub: the request handlers of the routes."""

    def __init__(self, config: DashboardConfig, assets: dict[str, Asset] | None = None) -> None:
        self.config = config
        assets = load_assets() if assets is None else assets
        self.template = assets.pop(PAGE).body.decode()
        self.assets = assets
        digest = hashlib.sha256()
        for name in sorted(assets):
            digest.update(name.encode() + b"\0" + assets[name].body)
        self.build = digest.hexdigest()[:12]
        self.base = base_path(config.path)
        self.assets_url = f"{self.base}static/{self.build}/"

    def routes(self) -> list[web.AbstractRouteDef]:
        paths = [self.config.path]
        if self.config.path != self.base:  # `/dash` and `/dash/` both show the page
            paths.append(self.base)
        return [*(web.get(path, self.page) for path in paths),
                web.get(self.base + "static/{build}/{name}", self.asset)]

    def settings(self, ws_path: str) -> dict[str, Any]:
        """What the page's script reads from its JSON block."""
        c = self.config
        return {"title": c.title, "wsPath": ws_path, "topics": c.topics, "rewind": c.rewind,
                "maxItems": c.max_items, "chartWindow": c.chart_window,
                "nativeToken": c.native_token, "tokenDecimals": c.token_decimals,
                "version": __version__}

    def render(self, ws_path: str) -> bytes:
        values = {
            "title": html.escape(self.config.title),
            "assets": html.escape(self.assets_url),
            # `<` escaped so that no string can close the <script> block it sits in.
            "settings": json.dumps(self.settings(ws_path)).replace("<", "\\u003c"),
        }
        # One pass, so that a title containing `{{settings}}` stays text.
        return _SLOT.sub(lambda slot: values[slot.group(1)], self.template).encode()

    def policy(self, request: web.Request) -> str:
        """A Content-Security-Policy that lets the page reach its own hub and nothing else.

        `connect-src 'self'` covers same-origin ws:/wss: only in CSP 3 browsers; the
        host is named explicitly for the others."""
        sockets = ""
        host = request.host
        if _HOST.match(host):
            sockets = f" ws://{host} wss://{host}"
        return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                f"connect-src 'self'{sockets}; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'")

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The live dashboard (HTML): a protocol v1 client of this hub's socket."""
        body = self.render(request.app[HUB].config.server.ws_path)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {
            # The page names the current assets and settings: always ask whether it changed.
            "Cache-Control": "no-cache",
            "ETag": etag,
            "Content-Security-Policy": self.policy(request),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers={**headers,
                                                "Content-Type": CONTENT_TYPES[".html"]})

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """A script, style sheet or icon of the dashboard; cached for good, since its
        URL names the digest of every asset."""
        asset = self.assets.get(request.match_info["name"])
        if asset is None or request.match_info["build"] != self.build:
            # An old build's URL: the page that asked is stale and will reload the new one.
            raise web.HTTPNotFound(reason="no such dashboard asset")
        headers = {"Cache-Control": IMMUTABLE, "ETag": asset.etag,
                   "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = asset.content_type
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return DashboardConfig


@hookimpl
def ocos_routes(config: DashboardConfig) -> list[web.AbstractRouteDef]:
    return Dashboard(config).routes()


@hookimpl
def ocos_openapi(config: DashboardConfig) -> dict[str, Any]:
    base = base_path(config.path)
    error = {"$ref": "#/components/responses/Error"}
    unchanged = {"description": "Not modified: the `ETag` given in `If-None-Match`."}
    page = {"get": {
        "summary": "The live dashboard",
        "description": "An HTML page that connects to this hub's socket as a protocol v1 "
        "client (docs/dashboard.md). Revalidated on every load (`Cache-Control: no-cache`).",
        "tags": ["dashboard"],
        "responses": {"200": {"description": "The page.",
                              "content": {"text/html": {"schema": {"type": "string"}}}},
                      "304": unchanged},
    }}
    asset = {"get": {
        "summary": "A script, style sheet or icon of the dashboard",
        "description": "`build` is the digest of every asset, so the response is cached for "
        "good (`immutable`); another build's URL is not found.",
        "tags": ["dashboard"],
        "parameters": [{"name": name, "in": "path", "required": True,
                        "schema": {"type": "string"}} for name in ("build", "name")],
        "responses": {"200": {"description": "The file.", "content": {
            media: {"schema": {"type": "string"}}
            for media in ("text/javascript", "text/css", "image/svg+xml")}},
                      "304": unchanged, "404": error},
    }}
    paths = {config.path: page, base: page} if base != config.path else {base: page}
    return {**paths, base + "static/{build}/{name}": asset}
