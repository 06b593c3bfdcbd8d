"""NATS JetStream scale-out plugin (`nats`): many hub nodes behave as one.

Enable it on every node with the same `[plugins.nats]` `url`, `stream` and `prefix`: events
published on any node reach the subscribers of every node, in offset order, with one epoch
and one history (a JetStream stream, see `ocos_nats.broker`); producers outside the hub
publish to `<prefix>.ingest.<topic>` (`ocos_nats.ingest`). See docs/scale-out.md.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from ocos_hub import hookimpl
from ocos_nats.config import NatsConfig

if TYPE_CHECKING:
    from ocos_hub.broker import Broker
    from ocos_hub.config import HubConfig
    from ocos_hub.hub import Hub

__all__ = ["NatsConfig"]


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return NatsConfig


@hookimpl
def ocos_broker(config: NatsConfig, hub_config: HubConfig) -> Broker:
    from ocos_nats.broker import NatsBroker

    return NatsBroker(config, hub_config)


@hookimpl
def ocos_startup(hub: Hub, config: NatsConfig) -> Awaitable[None] | None:
    from ocos_nats.broker import NatsBroker

    if isinstance(hub.broker, NatsBroker):
        return hub.broker.attach(hub)
    return None
