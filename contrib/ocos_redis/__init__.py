"""Redis scale-out plugin (`redis`): many hub nodes behave as one.

Enable it on every node with the same `[plugins.redis]` `url` and `prefix`: events
published on any node reach the subscribers of every node, in offset order, with one epoch
and one history (Redis Streams, see `ocos_redis.broker`); producers outside the hub publish
by appending to the ingest stream (`ocos_redis.ingest`); login sessions and wallet nonces
are shared (`ocos_redis.stores`). See docs/scale-out.md.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ocos_hub import hookimpl
from ocos_redis.config import RedisConfig

if TYPE_CHECKING:
    from ocos_hub.broker import Broker
    from ocos_hub.config import HubConfig
    from ocos_hub.hub import Hub

__all__ = ["RedisConfig"]


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return RedisConfig


@hookimpl
def ocos_broker(config: RedisConfig, hub_config: HubConfig) -> Broker | None:
    if not config.broker:
        return None
    from ocos_redis.broker import RedisBroker

    return RedisBroker(config, hub_config)


@hookimpl
def ocos_session_store(config: RedisConfig, hub_config: HubConfig) -> Any:
    # Imported here: the auth plugins are needed only when the sessions plugin asks.
    from ocos_redis.broker import connect
    from ocos_redis.stores import RedisSessionStore

    return RedisSessionStore(connect(config, config.command_timeout), config.prefix)


@hookimpl
def ocos_rate_limit_store(config: RedisConfig, hub_config: HubConfig) -> Any:
    # Imported here: the middleware plugin is needed only when the ratelimit plugin asks.
    from ocos_redis.broker import connect
    from ocos_redis.ratelimit import RedisRateLimitStore

    return RedisRateLimitStore(connect(config, config.command_timeout), config.prefix)


@hookimpl
def ocos_startup(hub: Hub, config: RedisConfig) -> Awaitable[None] | None:
    from ocos_redis.broker import RedisBroker

    if isinstance(hub.broker, RedisBroker):
        return hub.broker.attach(hub)
    return None
