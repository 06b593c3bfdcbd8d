"""The plugin contract: every hook a plugin may implement.

Plugins are modules (or objects) registered under the entry-point group `ocos_hub` and
enabled by name in `[plugins] enabled`. Each hook is called once per enabled plugin at
startup, with that plugin's own validated config section as `config` (None when the plugin
declares no config model). Registration hooks return objects; the core drives their async
methods. No hook is called on the per-event delivery path.

Implement a hook with the `hookimpl` marker::

    from ocos_hub import hookimpl

    @hookimpl
    def ocos_topics(config):
        return [Topic(name="oracle-feeds", kinds={"price": Price})]

The docstrings below are the reference documentation of each hook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel

if TYPE_CHECKING:
    from aiohttp import web

    from ocos_hub.auth import AuthMethod
    from ocos_hub.broker import Broker, Event, HistoryStore
    from ocos_hub.config import HubConfig
    from ocos_hub.hub import Hub
    from ocos_hub.middleware import Middleware
    from ocos_hub.operations import Operation
    from ocos_hub.sources import Source
    from ocos_hub.topics import Topic

PROJECT = "ocos_hub"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# A compiled `where` object: True when the event passes every condition.
EventPredicate = Callable[["Event"], bool]
# Compiles a `where` object, given the data models of the event kinds it will see.
WhereCompiler = Callable[[Mapping[str, Any], Sequence[type[BaseModel]]], EventPredicate]


@hookspec
def ocos_config_model() -> type[BaseModel] | None:
    """Return the pydantic model of this plugin's `[plugins.<name>]` config section.

    Called first, once. The core validates the operator's section with it and refuses to
    start with a message naming the file, the section and the field when it does not fit.
    The validated model instance is what every other hook receives as `config`. Give each
    field a default so the plugin runs when its section is absent, and a `description`
    (`Field(description=...)`): the configuration docs are generated from them.
    """


@hookspec
def ocos_topics(config: Any) -> list[Topic]:
    """Return the topics this plugin provides.

    Each `Topic` names its event kinds with the pydantic model of their `data`, an
    optional filter model (a `TopicFilter` subclass, the topic's `filter` object), a
    description and examples. Topic names must be unique across plugins.
    """


@hookspec
def ocos_auth_methods(config: Any) -> list[AuthMethod]:
    """Return authentication methods (`AuthMethod` objects).

    A method's `name` is what clients put in `{type: "auth", method: ...}`. At the
    handshake and on HTTP calls, the core offers the presented bearer token or API key to
    every method in `[plugins] enabled` order; the first that recognises it decides.
    """


@hookspec
def ocos_middleware(config: Any) -> list[Middleware]:
    """Return middleware (`Middleware` objects) for handshakes, HTTP calls and requests.

    The chain runs in ascending `order`, ties in `[plugins] enabled` order (docs/operations.md
    lists the first-party slots). `on_http` wraps every HTTP request, the socket's upgrade
    request for the whole life of its connection included; lower `order` is further out.
    Handshake-level stages run before the WebSocket upgrade: `on_handshake` before the
    credentials are checked, `on_admit` after, with the principal. Message-level stages
    (`on_request`, `on_reply`) run around every request on every connection.
    """


@hookspec
def ocos_operations(config: Any) -> list[Operation]:
    """Return extension operations: new request types (`history`, `topics`, ...).

    An operation's `name` is the request's `type`. Its `request_model` validates the
    request (unknown fields are `invalid_message`), `required_scope` is enforced before it
    runs, and what it returns becomes the `ack`. A name already taken stops the start.
    """


@hookspec
def ocos_where(config: Any) -> WhereCompiler | None:
    """Return the compiler of `where` objects in `subscribe` requests.

    It receives the client's `where` object and the data models of the event kinds the
    subscription keeps (so that it can refuse a path none of them has), and returns a
    predicate over events, or raises `HubError("invalid_filter", ...)`. Without such a
    plugin, `where` is refused with `invalid_filter`. At most one enabled plugin may
    return one.
    """


@hookspec
def ocos_sources(config: Any) -> list[Source]:
    """Return background producers (`Source` objects).

    Each source's `run(hub)` starts as a task once the broker is up and is cancelled at
    shutdown before connections close.
    """


@hookspec
def ocos_broker(config: Any, hub_config: HubConfig) -> Broker | None:
    """Return the broker that orders and distributes events, or None.

    At most one enabled plugin may return a broker; without one the hub uses the memory
    broker over the history store. A broker keeps its own history.
    """


@hookspec
def ocos_history_store(config: Any, hub_config: HubConfig) -> HistoryStore | None:
    """Return the history store used by the memory broker (SQLite, ...), or None.

    At most one enabled plugin may return one; the default is a bounded memory ring per
    topic sized by `[history]`.
    """


@hookspec
def ocos_routes(config: Any) -> list[web.AbstractRouteDef]:
    """Return aiohttp route definitions added to the hub's HTTP app (`web.get(...)`, ...).

    Handlers reach the hub with `request.app[HUB]` (`ocos_hub.app.HUB`). Each route appears
    in `GET /openapi.json` with its handler's docstring; `ocos_openapi` describes it fully.
    """


@hookspec
def ocos_openapi(config: Any) -> Mapping[str, Any] | None:
    """Return OpenAPI 3.1 path items for this plugin's routes, keyed by path.

    For example `{"/auth/challenge": {"post": {"summary": ..., "requestBody": ...,
    "responses": ...}}}`. Wherever a Schema Object goes, a pydantic model class may stand
    instead: the generator puts its JSON Schema under `components/schemas` and refers to
    it. `#/components/responses/Error` (the `{code, message, details}` body) is there to
    refer to. An operation without `responses` gets a JSON 200 and that error. Routes from
    `ocos_routes` that no plugin describes are listed with their handler's docstring.
    Called when the documents are generated (first `GET /openapi.json`, `ocos-hub docs`).
    """


@hookspec
def ocos_startup(hub: Hub, config: Any) -> Awaitable[None] | None:
    """Called once the broker has started and before sources run and clients connect.

    Return an awaitable to do async work (the core awaits it); keep a reference to `hub`
    to publish or observe events later.
    """


@hookspec
def ocos_shutdown(hub: Hub, config: Any) -> Awaitable[None] | None:
    """Called at shutdown after sources stopped and connections closed, before the broker
    closes. Return an awaitable to do async work."""


@hookspec
def ocos_session_store(config: Any, hub_config: HubConfig) -> Any:
    """Return the store of login sessions (an `ocos_auth.sessions.SessionStore`), or None.

    Called by the `sessions` plugin at startup, not by the core, which knows no session.
    A shared store (Redis) lets every node accept and revoke the same session tokens. At
    most one enabled plugin may return one; without one, sessions are kept in memory. A
    store that also implements `ocos_auth.wallet.NonceStore` keeps wallet-login nonces too.
    """


@hookspec
def ocos_rate_limit_store(config: Any, hub_config: HubConfig) -> Any:
    """Return the store of shared rate-limit state (an
    `ocos_middleware.ratelimit.RateLimitStore`), or None.

    Called by the `ratelimit` plugin at startup, not by the core. A shared store (Redis)
    makes per-principal, per-topic and connection limits hold across every node. At most
    one enabled plugin may return one; without one, limits are kept in memory per node.
    """
