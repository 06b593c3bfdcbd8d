"""The prose of docs/writing-plugins.md, around the hook reference generated from hookspecs.py.

It lives in a module (not a data file) so that it ships with the package. The walk-through's
Python blocks are one plugin module and one test file: tests/docs run them as written.
"""

from __future__ import annotations

INTRO = '''\
A plugin is a Python module (or any object) with hook implementations, registered under
the entry-point group `ocos_hub` and enabled by name in `[plugins] enabled`. Everything
beyond the small core is a plugin: topics, auth methods, middleware, extension requests,
sources, brokers and history stores. The first-party ones (`plugins/`) are registered
exactly as a third party's are, so every one of them is an example.

What the hub does with a plugin:

1. At startup it imports only the plugins named in `[plugins] enabled`, by entry point.
   A plugin module that cannot work without others names them in a module-level
   `ocos_requires = ("sessions",)`; the start (and `check-config`) stops unless they are
   enabled too.
2. It calls `ocos_config_model()` and validates the plugin's own section
   `[plugins.<name>]` with the model returned; a wrong option stops the start with a
   message naming the file, section and field.
3. It calls every other hook the plugin implements once, with that validated config as
   `config`. Registration hooks return objects (`Topic`, `AuthMethod`, `Middleware`,
   `Operation`, `Source`, ...); the core drives their methods. No hook is called on the
   per-event delivery path.

The public API a plugin needs is exported by `ocos_hub` (its table is at the end of this
page). pluggy does not await: hooks are plain functions, and those that need async work
(`ocos_startup`, `ocos_shutdown`) return an awaitable that the core awaits.
'''

WALKTHROUGH = '''\
This section builds `oracle-feeds`, a topic of price updates from oracle feeds, as a
separate distribution that an operator installs next to the hub. The same plugin, packaged
and tested, is in the repository: `contrib/oracle_feeds/` (its `pyproject.toml` and
`ocos_oracle_feeds/__init__.py`); `tests/contrib/test_oracle_feeds_example.py` installs it
with pip into a temporary directory and runs it in a hub, the way a user would. The Python
blocks below are one module, `ocos_oracle_feeds/__init__.py`, and one test file; the docs
tests run them as written.

### 1. Layout

```
oracle_feeds/
  pyproject.toml
  ocos_oracle_feeds/__init__.py     the hook implementations
  tests/test_oracle_feeds.py
```

Name the import package so that it cannot collide with anything else (`ocos_<name>`).

### 2. The event model

Each event kind has a pydantic model of its `data`. Clients are written against the
generated docs, so give the model a docstring and every field a `description`. Refuse
unknown fields and loose types: a publisher learns about a mistake at once
(`invalid_event`, with pydantic's errors in `details`). Follow the catalog's conventions:
amounts are decimal strings (256-bit values do not survive JSON numbers), times RFC 3339
UTC, ids strings.

```python
# ocos_oracle_feeds/__init__.py
"""`oracle-feeds`: price updates from oracle feeds, as an OCOS Hub topic."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ocos_hub import Event, Topic, TopicFilter, hookimpl

TOPIC = "oracle-feeds"

Feed = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]+/[A-Z0-9]+$", max_length=64)]


class PriceUpdate(BaseModel):
    """A new answer of one price feed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    feed: Feed = Field(description="Feed, as BASE/QUOTE (`OCOS/USD`).")
    price: Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,77})$")] = Field(
        description="The answer in units of 10^-decimals, as a decimal string.")
    decimals: Annotated[int, Field(ge=0, le=77)] = Field(description="Decimal places of price.")
    round: Annotated[int, Field(ge=0)] = Field(description="Round number, growing per feed.")
    source: str = Field(description="Who reported it (`chainlink`, `pyth`, an address).")
```

### 3. The filter

A topic's `filter` object (what a client sends in `subscribe`) is a `TopicFilter`
subclass: its fields are validated like any model (an unknown field or a wrong type is
`invalid_filter` naming the field), and `matches` decides per event. `matches` runs for
every event and every subscription, live and replayed, so keep it to dictionary look-ups.

```python
# ocos_oracle_feeds/__init__.py (continued)
class OracleFeedsFilter(TopicFilter):
    """Every field given must match."""

    feed: list[Feed] | None = Field(None, min_length=1, description="Any of these feeds.")
    source: str | None = Field(None, description="Only updates from this source.")

    def matches(self, event: Event) -> bool:
        if self.feed is not None and event.data["feed"] not in self.feed:
            return False
        return self.source is None or event.data["source"] == self.source
```

### 4. The config section

`[plugins.oracle-feeds]` is validated by the model `ocos_config_model` returns. Give every
field a default (the plugin then runs without a section) and a `description` (the
configuration docs are generated from it).

```python
# ocos_oracle_feeds/__init__.py (continued)
class OracleFeedsConfig(BaseModel):
    """`[plugins.oracle-feeds]`."""

    model_config = ConfigDict(extra="forbid")

    feeds: list[Feed] = Field(
        default_factory=list,
        description="Feeds this hub accepts (`BASE/QUOTE`); empty accepts every feed.")


def price_model(feeds: list[str]) -> type[PriceUpdate]:
    """The `price.update` model for a config: restricted to its feeds when it lists any."""
    if not feeds:
        return PriceUpdate
    allowed = frozenset(feeds)

    class AllowedPriceUpdate(PriceUpdate):
        @field_validator("feed")
        @classmethod
        def _allowed(cls, value: str) -> str:
            if value not in allowed:
                raise ValueError(f"this hub accepts only the feeds {sorted(allowed)}")
            return value

    AllowedPriceUpdate.__name__ = PriceUpdate.__name__
    return AllowedPriceUpdate
```

### 5. The hooks

Two hooks make a topic plugin: the config model, and the topics. `examples` feed the
generated docs (each kind's example frame) and are validated like published data.

```python
# ocos_oracle_feeds/__init__.py (continued)
EXAMPLE: dict[str, Any] = {"feed": "OCOS/USD", "price": "123450000", "decimals": 8,
                           "round": 42, "source": "chainlink"}


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return OracleFeedsConfig


@hookimpl
def ocos_topics(config: OracleFeedsConfig) -> list[Topic]:
    return [Topic(
        name=TOPIC,
        kinds={"price.update": price_model(config.feeds)},
        filter_model=OracleFeedsFilter,
        description="Price updates from oracle feeds.",
        examples={"price.update": EXAMPLE},
    )]
```

A topic may also pass `visible=`, a function `(principal, event) -> bool` that narrows
delivery per event (the `identity` topic delivers each event to its subject only).

### 6. Packaging: the entry point

The whole contract with the hub is one entry point: group `ocos_hub`, name = what operators
write in `[plugins] enabled`, value = the module holding the hook implementations.

```toml
# pyproject.toml
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "ocos-oracle-feeds"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["ocos-hub>=0.1", "pydantic>=2.7"]

[project.entry-points.ocos_hub]
oracle-feeds = "ocos_oracle_feeds"
```

Install it next to the hub (`pip install ./oracle_feeds`); `ocos-hub plugins` lists it.
Then enable and configure it:

```toml
[plugins]
enabled = ["oracle-feeds", "apikey"]

[plugins.oracle-feeds]
feeds = ["OCOS/USD", "WETH/USD"]

[access]
anonymous = ["subscribe:oracle-feeds"]
```

`ocos-hub check-config hub.toml` loads the plugins and validates every section without
starting the hub.

### 7. Using it

Producers publish over HTTP (or a socket `publish`, or from a source plugin), with a
principal holding `publish:oracle-feeds`:

```console
$ curl -s -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \\
    -d '{"topic": "oracle-feeds", "event": "price.update", "data": {"feed": "OCOS/USD",
         "price": "123450000", "decimals": 8, "round": 43, "source": "chainlink"}}' \\
    http://127.0.0.1:8765/api/v1/events
{"offsets": [1]}
```

Clients subscribe with the topic's filter:

```json
{"type": "subscribe", "id": 1, "topic": "oracle-feeds", "filter": {"feed": ["OCOS/USD"]}}
```

### 8. Testing it against a real hub

`create_app(config, plugins=[(name, module)])` registers a plugin without an entry point,
so a test can run the module in a real hub on a real socket (pytest-aiohttp's
`aiohttp_client`, with `asyncio_mode = "auto"`):

```python
# tests/test_oracle_feeds.py
from __future__ import annotations

from typing import Any

import ocos_oracle_feeds
from ocos_hub.app import create_app
from ocos_hub.config import parse_config

PRICE = {"feed": "OCOS/USD", "price": "123450000", "decimals": 8, "round": 7,
         "source": "chainlink"}


async def test_subscribers_get_the_feeds_they_ask_for(aiohttp_client: Any) -> None:
    config = parse_config({
        "plugins": {"enabled": ["oracle-feeds"], "oracle-feeds": {"feeds": ["OCOS/USD",
                                                                            "WETH/USD"]}},
        "access": {"anonymous": ["subscribe:*", "publish:*"]},
    })
    client = await aiohttp_client(create_app(config, plugins=[("oracle-feeds",
                                                                ocos_oracle_feeds)]))
    ws = await client.ws_connect("/ws", protocols=["ocos.v1"])
    assert (await ws.receive_json())["type"] == "welcome"
    await ws.send_json({"type": "subscribe", "id": 1, "topic": "oracle-feeds",
                        "filter": {"feed": ["OCOS/USD"]}})
    assert (await ws.receive_json())["type"] == "ack"

    events = [{"topic": "oracle-feeds", "event": "price.update", "data": data}
              for data in ({**PRICE, "feed": "WETH/USD"}, PRICE)]
    published = await client.post("/api/v1/events", json={"events": events})
    assert (await published.json())["offsets"] == [1, 2]
    event = await ws.receive_json()
    assert (event["offset"], event["data"]) == (2, PRICE)

    refused = await client.post("/api/v1/events", json={
        "topic": "oracle-feeds", "event": "price.update", "data": {**PRICE, "feed": "X/Y"}})
    assert refused.status == 422
    assert (await refused.json())["code"] == "invalid_event"
```

### 9. Its documentation

Nothing to write by hand: the hub documents every enabled plugin. `GET /docs` (HTML),
`/asyncapi.json`, `/openapi.json` and `/schema.graphql` include the topic, its kinds, fields,
filter and example as soon as it is enabled, and `ocos-hub docs --config hub.toml --out
site` writes the same files. For a Markdown page in your own repository:
`python -m ocos_hub.docs --plugin oracle-feeds --out docs/topics`.
'''

OTHER_KINDS = '''\
The other registration hooks follow the same pattern: return objects, let the core drive
them. Minimal shapes (all names from `ocos_hub`):

**An extension request** (`ocos_operations`). `name` is the request's `type`;
`request_model` validates it (unknown fields are `invalid_message`), `required_scope` is
checked before it runs, and what it returns becomes the `ack`. `reply_model` documents the
ack's fields in the generated docs.

```python
class EchoRequest(Request):
    text: str = Field(max_length=100, description="What to echo.")


class EchoReply(BaseModel):
    text: str = Field(description="The same text.")


class Echo(Operation):
    """Answers with the text it was sent."""

    name = "echo"
    request_model = EchoRequest
    reply_model = EchoReply

    def required_scope(self, request: Request) -> str | None:
        return None  # anyone may send it

    async def __call__(self, session, request: EchoRequest) -> dict[str, Any]:
        return {"text": request.text}


@hookimpl
def ocos_operations(config: Any) -> list[Operation]:
    return [Echo()]
```

**An auth method** (`ocos_auth_methods`). `authenticate` checks an in-band `auth`
request's fields; `from_handshake` checks a bearer token (`TOKEN`) or API key (`API_KEY`)
presented at the handshake, returning None when the value is not in its format.
Override `sign_in` when an in-band sign-in creates something the client keeps: it returns
the principal and the fields its ack adds (the wallet's session `token`, for instance).
`credentials_model` and `handshake_credentials` tell the generated docs what it reads.
Refuse with `HubError("invalid_credentials", ...)`.

**Middleware** (`ocos_middleware`). Subclass `Middleware`, set `order` (the documented
slots are in docs/operations.md) and override only the stages you need: `on_handshake`,
`on_admit`, `on_http`, `on_connect`, `on_request`, `on_reply`, `on_auth`, `on_published`,
`on_disconnect`. The core calls only the stages a middleware overrides.

**A source** (`ocos_sources`). `Source.run(hub)` is started as a task once the broker is
up and cancelled at shutdown; publish with `await hub.publish(topic, kind, data)`.

**HTTP routes** (`ocos_routes`, `ocos_openapi`). Return aiohttp route definitions; the
handler reaches the hub with `request.app[HUB]` and raises `HubError` for refusals (they
become the JSON error body). Each route is listed in `/openapi.json` with its handler's
docstring; `ocos_openapi` describes it fully, with pydantic models where schemas go:

```python
@hookimpl
def ocos_routes(config: Any) -> list[web.AbstractRouteDef]:
    return [web.get("/api/v1/echo", echo)]


@hookimpl
def ocos_openapi(config: Any) -> dict[str, Any]:
    return {"/api/v1/echo": {"get": {
        "summary": "Echo the `text` query parameter",
        "responses": {"200": {"description": "The text.",
                              "content": {"application/json": {"schema": EchoReply}}},
                      "400": {"$ref": "#/components/responses/Error"}},
    }}}
```

**Infrastructure** (`ocos_broker`, `ocos_history_store`, `ocos_session_store`,
`ocos_rate_limit_store`, `ocos_where`): at most one enabled plugin may provide each; see
`contrib/ocos_redis` and `contrib/ocos_nats` for brokers and shared stores,
`plugins/ocos_extensions` for a history store and the `where` compiler.

Tests of plugins use real sockets: `tests/conftest.py` has `start_hub`, which starts a hub
with the plugins given on a real port and returns WebSocket and HTTP clients.
'''
