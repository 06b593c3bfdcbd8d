"""`origin`: refuse WebSocket handshakes from foreign web origins; CORS for the HTTP API.

Browsers attach a page's `Origin` to every WebSocket handshake and let any site open a
socket to any host, so a hub that ignores `Origin` can be driven by a hostile page in a
user's browser (cross-site WebSocket hijacking). Handshakes whose `Origin` is not allowed
are refused before the upgrade with HTTP 403 and `{"code": "forbidden_origin", ...}`.

A handshake without `Origin` comes from a non-browser client (a bot, a backend, the CLI):
browsers always send it, and such a client cannot be steered by a hostile page. It is
allowed unless `allow_missing_origin = false`.

Allowed origins are exact (`https://app.ocos.example`, scheme, host and port compared) or
wildcards (`https://*.dapps.ocos.example`: any subdomain, at any depth, with that scheme
and port, but not the bare domain). `"*"` allows every origin (development only). The
literal `null` origin (sandboxed frames, `file:` pages) is allowed only when listed.

For the HTTP API the same list drives CORS: allowed origins get
`Access-Control-Allow-Origin` (the origin itself, never `*`) and a preflight (`OPTIONS`)
is answered with the configured methods, headers and `max_age`. A request with a foreign
`Origin` and a method that changes state (`POST`, `PUT`, `PATCH`, `DELETE`) is refused
with 403 `forbidden_origin`; reads get no CORS headers, so the browser hides the answer.

Order 100: first in the chain, so a foreign page costs nothing else (no credential check).
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ocos_hub import HubError, Middleware, hookimpl
from ocos_hub.appkeys import HUB
from ocos_hub.config import Section
from ocos_hub.middleware import Handler

CODE = "forbidden_origin"
DEFAULT_PORTS = {"http": 80, "https": 443}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def normalise(origin: str) -> str:
    """`scheme://host[:port]` lowercased, default port dropped; ValueError when not an origin.

    A `*.` host prefix is kept as written (wildcard entries).
    """
    if origin == "null":
        return origin
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{origin!r} is not an origin: no path, query or user allowed")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port  # ValueError when not a number
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


class CorsConfig(Section):
    enabled: bool = Field(True, description="Answer CORS preflights and add CORS headers to "
                          "API responses for allowed origins.")
    allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "OPTIONS"],
        description="Methods a preflight may ask for (Access-Control-Allow-Methods).")
    allow_headers: list[str] = Field(
        default_factory=lambda: ["Authorization", "Content-Type", "X-API-Key"],
        description="Request headers a preflight may ask for (Access-Control-Allow-Headers).")
    expose_headers: list[str] = Field(
        default_factory=lambda: ["Retry-After"],
        description="Response headers scripts may read (Access-Control-Expose-Headers).")
    max_age: int = Field(600, ge=0, description="Seconds a browser may cache a preflight "
                         "answer (Access-Control-Max-Age).")
    allow_credentials: bool = Field(
        False, description="Send Access-Control-Allow-Credentials: true (cookies or HTTP "
        "auth from the browser). The hub's own credentials are headers, so this is rarely "
        "needed.")

    @field_validator("allow_methods")
    @classmethod
    def _upper(cls, methods: list[str]) -> list[str]:
        return [m.upper() for m in methods]


class OriginConfig(Section):
    allowed_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to open sockets and read the API: "
        "exact (`https://app.ocos.example`), wildcard subdomains "
        "(`https://*.dapps.ocos.example`), `null`, or `*` for any (development only).")
    allow_missing_origin: bool = Field(
        True, description="Allow handshakes without an Origin header (non-browser clients; "
        "browsers always send one).")
    cors: CorsConfig = Field(default_factory=CorsConfig,
                             description="CORS for the HTTP API, for the same origins.")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        checked = []
        for entry in origins:
            if entry == "*":
                checked.append(entry)
                continue
            host = entry.partition("://")[2]
            if "*" in entry and (not host.startswith("*.") or "*" in host[2:]):
                raise ValueError(f"{entry!r}: a wildcard must be the whole first label, "
                                 "as in 'https://*.dapps.example'")
            checked.append(normalise(entry))
        return checked

    @field_validator("cors")
    @classmethod
    def _no_credentials_for_everyone(cls, cors: CorsConfig, info: ValidationInfo) -> CorsConfig:
        if cors.allow_credentials and "*" in info.data.get("allowed_origins", ()):
            raise ValueError("allow_credentials with '*' in allowed_origins would let any "
                             "site act with a user's browser credentials")
        return cors


class OriginPolicy:
    """The allowlist compiled: a set of exact origins and one regex for the wildcards."""

    def __init__(self, allowed: list[str]) -> None:
        self.any = "*" in allowed
        self.exact = frozenset(o for o in allowed if "*" not in o)
        patterns = []
        for entry in allowed:
            if "*" in entry and entry != "*":
                scheme, _, host = entry.partition("://")
                patterns.append(re.escape(f"{scheme}://") + r"(?:[a-z0-9-]+\.)+"
                                + re.escape(host[2:]))
        self.wildcard = re.compile("|".join(patterns)) if patterns else None

    def allows(self, origin: str) -> bool:
        if self.any:
            return True
        try:
            origin = normalise(origin)
        except ValueError:
            return False
        if origin in self.exact:
            return True
        return self.wildcard is not None and self.wildcard.fullmatch(origin) is not None


def forbidden(origin: str | None, message: str) -> HubError:
    return HubError(CODE, message, {"origin": origin}, status=403)


class OriginCheck(Middleware):
    """Origin allowlist at the handshake, CORS on the HTTP API."""

    name: ClassVar[str] = "origin"
    order: ClassVar[int] = 100

    def __init__(self, config: OriginConfig) -> None:
        self.config = config
        self.policy = OriginPolicy(config.allowed_origins)
        cors = config.cors
        self._methods = ", ".join(cors.allow_methods)
        self._headers = ", ".join(cors.allow_headers)
        self._header_set = frozenset(h.lower() for h in cors.allow_headers)

    async def on_handshake(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is None:
            if not self.config.allow_missing_origin:
                raise forbidden(None, "this hub requires an Origin header")
            return
        if not self.policy.allows(origin):
            raise forbidden(origin, f"origin {origin!r} may not open sockets on this hub")

    def _cors_headers(self, origin: str) -> dict[str, str]:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self.config.cors.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or request.path == request.app[HUB].config.server.ws_path:
            return await handler(request)  # not cross-origin, or checked by on_handshake
        allowed = self.policy.allows(origin)
        cors = self.config.cors
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return self._preflight(request, origin, allowed)
        if not allowed:
            if request.method in UNSAFE_METHODS:
                raise forbidden(origin, f"origin {origin!r} may not call this API")
            return await handler(request)
        if not cors.enabled:
            return await handler(request)
        headers = self._cors_headers(origin)
        if cors.expose_headers:
            headers["Access-Control-Expose-Headers"] = ", ".join(cors.expose_headers)
        try:
            response = await handler(request)
        except HubError as exc:  # the JSON error body must be readable by the page too
            exc.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    def _preflight(self, request: web.Request, origin: str, allowed: bool) -> web.Response:
        if not allowed or not self.config.cors.enabled:
            raise forbidden(origin, f"origin {origin!r} may not call this API")
        method = request.headers["Access-Control-Request-Method"].upper()
        if method not in self.config.cors.allow_methods:
            raise forbidden(origin, f"method {method} is not allowed cross-origin")
        asked = [h.strip() for h in request.headers.get("Access-Control-Request-Headers",
                                                        "").split(",") if h.strip()]
        refused = [h for h in asked if h.lower() not in self._header_set]
        if refused:
            raise forbidden(origin, f"headers not allowed cross-origin: {', '.join(refused)}")
        headers = self._cors_headers(origin)
        headers.update({
            "Access-Control-Allow-Methods": self._methods,
            "Access-Control-Allow-Headers": self._headers,
            "Access-Control-Max-Age": str(self.config.cors.max_age),
        })
        return web.Response(status=204, headers=headers)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return OriginConfig


@hookimpl
def ocos_middleware(config: OriginConfig) -> list[Middleware]:
    return [OriginCheck(config)]

