"""`tracing`: OpenTelemetry spans for handshakes, requests, HTTP calls and fan-out.

Spans (all with `ocos.*` attributes):

- `ws.handshake`: from the upgrade request to the welcome (or the refusal, status ERROR
  with `ocos.error_code`); `ocos.session` and `ocos.principal` when accepted.
- `ws <type>` for each socket request (`ws subscribe`, `ws publish`, ...), linked to its
  connection's handshake span; `ocos.request_id`, `ocos.topic`, `ocos.outcome`.
- `HTTP <method> <route>` for each API call (route templates, not paths, as names).
- `ocos.fanout` for each published batch, a child of the request or API call that
  published it: from the hand-off to local subscribers until the loop tick that wrote
  their frames ended; `ocos.topics`, `ocos.events`, `ocos.deliveries`.

A `traceparent` header on a handshake or an API call continues the caller's trace.

OpenTelemetry is the optional extra `ocos-hub[otel]`; enabling this plugin without it
stops the start with a message saying so. Spans go to the process's global tracer
provider (`exporter = "global"`, e.g. set up by `opentelemetry-instrument`), to stdout
(`"console"`), or to an OTLP collector (`"otlp"`, needs opentelemetry-exporter-otlp).

Order 600: spans cover what passed origin, rate limits and audit.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from ocos_hub import Event, HubError, Middleware, __version__, hookimpl
from ocos_hub.appkeys import HUB, PRINCIPAL
from ocos_hub.config import ConfigError, Section
from ocos_hub.hub import Hub
from ocos_hub.middleware import Handler
from ocos_hub.session import Session
from ocos_middleware._common import installed

if TYPE_CHECKING:
    from opentelemetry.trace import Span, SpanContext, TracerProvider

INSTALL = "pip install 'ocos-hub[otel]'"


class TracingConfig(Section):
    exporter: Literal["global", "console", "otlp"] = Field(
        "global", description="Where spans go: the process's global tracer provider, stdout, "
        "or an OTLP/HTTP collector.")
    service_name: str = Field("ocos-hub", description="`service.name` of the spans "
                              "(console and otlp exporters).")
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces URL (default: the exporter's, or "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).")
    sample_ratio: float = Field(1.0, ge=0, le=1, description="Share of new traces recorded "
                                "(console and otlp; a caller's sampling decision is kept).")
    propagate: bool = Field(True, description="Continue traces from `traceparent` headers of "
                            "handshakes and API calls.")


def require_otel() -> None:
    """Fail the start with instructions when the optional dependency is missing."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        raise ConfigError("plugin 'tracing' is enabled but OpenTelemetry is not installed: "
                          f"{INSTALL}") from None


def check_exporter(config: TracingConfig) -> None:
    """At config time: the packages the chosen exporter needs are importable."""
    if config.exporter == "global":
        return
    try:
        import opentelemetry.sdk.trace
    except ImportError:
        raise ConfigError(f"[plugins.tracing] exporter: {config.exporter!r} needs the "
                          f"OpenTelemetry SDK: {INSTALL}") from None
    if config.exporter == "otlp":
        try:
            import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        except ImportError:
            raise ConfigError("[plugins.tracing] exporter: 'otlp' needs "
                              "opentelemetry-exporter-otlp-proto-http (pip install it)") from None


def build_provider(config: TracingConfig) -> TracerProvider:
    """The SDK provider for `console` / `otlp` (its batch processor starts a thread)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter: Any
    if config.exporter == "console":
        exporter = ConsoleSpanExporter(out=sys.stdout)  # the stdout of now, not of import
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}),
                              sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


# The handshake's span, from the upgrade request until the welcome.
HANDSHAKE: web.RequestKey[Any] = web.RequestKey("ocos_tracing_handshake")


class Tracing(Middleware):
    """Starts and ends spans at the stages; holds one open request span per connection."""

    name: ClassVar[str] = "tracing"
    order: ClassVar[int] = 600

    def __init__(self, config: TracingConfig, provider: TracerProvider | None = None) -> None:
        require_otel()
        from opentelemetry import context, propagate, trace

        self.config = config
        self._context, self._propagate, self._trace = context, propagate, trace
        self.owned = provider is None and config.exporter != "global"
        if self.owned:
            check_exporter(config)
        else:
            self.provider = provider or trace.get_tracer_provider()
            self.tracer = self.provider.get_tracer("ocos_hub", __version__)
        self._links: dict[Session, SpanContext] = {}
        self._requests: dict[Session, tuple[Span, object]] = {}

    def _parent(self, request: web.Request) -> Any:
        return self._propagate.extract(request.headers) if self.config.propagate else None

    def _refused(self, span: Span, exc: HubError) -> None:
        from opentelemetry.trace import StatusCode

        span.set_attribute("ocos.error_code", exc.code)
        span.set_attribute("http.response.status_code", exc.status)
        if exc.status >= 500 or span.name == "ws.handshake":
            span.set_status(StatusCode.ERROR, exc.code)

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        from opentelemetry.trace import SpanKind, StatusCode

        attributes = {"http.request.method": request.method, "url.path": request.path,
                      "client.address": request.remote or ""}
        if request.path == request.app[HUB].config.server.ws_path:
            span = self.tracer.start_span("ws.handshake", self._parent(request),
                                          SpanKind.SERVER, attributes)
            request[HANDSHAKE] = span
            try:
                return await handler(request)
            except HubError as exc:
                self._refused(span, exc)
                raise
            finally:
                if request.pop(HANDSHAKE, None) is not None:  # not accepted
                    span.end()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        span = self.tracer.start_span(f"HTTP {request.method} {route}", self._parent(request),
                                      SpanKind.SERVER, {**attributes, "http.route": route})
        with self._trace.use_span(span, end_on_exit=True, record_exception=True,
                                  set_status_on_exception=False):
            try:
                response = await handler(request)
            except HubError as exc:
                self._refused(span, exc)
                raise
            except web.HTTPException as exc:
                span.set_attribute("http.response.status_code", exc.status)
                raise
            except Exception as exc:
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                raise
            span.set_attribute("http.response.status_code", response.status)
            principal = request.get(PRINCIPAL)
            if principal is not None:
                span.set_attribute("ocos.principal", principal.id)
            return response

    async def on_connect(self, session: Session) -> None:
        span = session.request.pop(HANDSHAKE, None)
        if span is None:
            return
        span.set_attribute("ocos.session", session.id)
        if session.principal is not None:
            span.set_attribute("ocos.principal", session.principal.id)
        span.set_attribute("http.response.status_code", 101)
        span.end()
        self._links[session] = span.get_span_context()

    def _start_request(self, session: Session, request: Mapping[str, Any] | None) -> Span:
        from opentelemetry.trace import Link, SpanKind

        op = request.get("type") if request else None
        attributes: dict[str, Any] = {"ocos.session": session.id,
                                      "ocos.op": op if isinstance(op, str) else "?"}
        if request is not None:
            request_id, topic = request.get("id"), request.get("topic")
            if isinstance(request_id, (str, int)) and not isinstance(request_id, bool):
                attributes["ocos.request_id"] = str(request_id)
            if isinstance(topic, str):
                attributes["ocos.topic"] = topic
        if session.principal is not None:
            attributes["ocos.principal"] = session.principal.id
        handshake = self._links.get(session)
        return self.tracer.start_span(
            f"ws {attributes['ocos.op']}", self._trace.set_span_in_context(
                self._trace.INVALID_SPAN), SpanKind.SERVER, attributes,
            links=[Link(handshake)] if handshake is not None else None)

    async def on_request(self, session: Session, request: dict[str, Any]) -> None:
        span = self._start_request(session, request)
        token = self._context.attach(self._trace.set_span_in_context(span))
        self._requests[session] = (span, token)

    async def on_reply(self, session: Session, request: dict[str, Any] | None,
                       reply: dict[str, Any]) -> None:
        from opentelemetry.trace import StatusCode

        started = self._requests.pop(session, None)
        if started is None:  # refused before this stage (rate limit, bad JSON, unknown type)
            span = self._start_request(session, request)
        else:
            span, token = started
            self._context.detach(token)
        if reply.get("type") == "error":
            span.set_attribute("ocos.outcome", str(reply.get("code")))
            span.set_status(StatusCode.ERROR, str(reply.get("code")))
        else:
            span.set_attribute("ocos.outcome", "ok")
        span.end()

    async def on_disconnect(self, session: Session, code: int | None) -> None:
        self._links.pop(session, None)
        started = self._requests.pop(session, None)
        if started is not None:  # the connection went away during a request
            span, token = started
            self._context.detach(token)
            span.set_attribute("ocos.outcome", "disconnected")
            span.end()

    def on_published(self, events: list[Event], deliveries: Mapping[str, int]) -> None:
        span = self.tracer.start_span("ocos.fanout", attributes={
            "ocos.topics": sorted(deliveries), "ocos.events": len(events),
            "ocos.deliveries": sum(deliveries.values())})
        try:
            asyncio.get_running_loop().call_soon(span.end)  # after the batch's flushes
        except RuntimeError:
            span.end()

    def start(self) -> None:
        """Build an owned provider now, not at config time (`check-config` starts nothing)."""
        if self.owned:
            self.provider = build_provider(self.config)
            self.tracer = self.provider.get_tracer("ocos_hub", __version__)

    def shutdown(self) -> None:
        """Export what is buffered (owned providers only)."""
        if self.owned:
            self.provider.shutdown()  # type: ignore[attr-defined]


class TracingPlugin:
    """The plugin as an object, for embedding and tests: spans go to `tracer_provider`
    (e.g. an SDK provider with an in-memory exporter) instead of the configured one."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer_provider = tracer_provider

    @hookimpl
    def ocos_config_model(self) -> type[BaseModel]:
        return TracingConfig

    @hookimpl
    def ocos_middleware(self, config: TracingConfig) -> list[Middleware]:
        return [Tracing(config, self.tracer_provider)]

    @hookimpl
    def ocos_startup(self, hub: Hub) -> None:
        for tracing in installed(hub, Tracing):
            tracing.start()

    @hookimpl
    async def ocos_shutdown(self, hub: Hub) -> None:
        for tracing in installed(hub, Tracing):
            await asyncio.to_thread(tracing.shutdown)


_default = TracingPlugin()


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return TracingConfig


@hookimpl
def ocos_middleware(config: TracingConfig) -> list[Middleware]:
    return _default.ocos_middleware(config)


@hookimpl
def ocos_startup(hub: Hub) -> None:
    _default.ocos_startup(hub)


@hookimpl
async def ocos_shutdown(hub: Hub) -> None:
    await _default.ocos_shutdown(hub)
