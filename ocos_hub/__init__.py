"""OCOS Hub: a real-time, plugin-based WebSocket event hub for OCOS-Chain.

The names exported here are the whole public API a plugin needs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ocos_hub.auth import AuthMethod, Principal
from ocos_hub.broker import Broker, Event, HistoryPage, HistoryStore, Position
from ocos_hub.errors import HubError
from ocos_hub.hookspecs import hookimpl
from ocos_hub.middleware import Middleware
from ocos_hub.operations import Ack, Operation, Request
from ocos_hub.sources import Source
from ocos_hub.topics import Topic, TopicFilter

__all__ = [
    "Ack",
    "AuthMethod",
    "Broker",
    "Event",
    "HistoryPage",
    "HistoryStore",
    "HubError",
    "Middleware",
    "Operation",
    "Position",
    "Principal",
    "Request",
    "Source",
    "Topic",
    "TopicFilter",
    "__version__",
    "hookimpl",
]
