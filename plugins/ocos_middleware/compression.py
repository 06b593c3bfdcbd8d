"""The `compression` plugin: permessage-deflate (RFC 7692) for clients that offer it.

The hub negotiates `server_no_context_takeover`, so every message is compressed on its own:
an event is compressed once and the same compressed frame goes to every compressing
receiver, which keeps fan-out cost close to uncompressed. Replies and replayed or
filtered events go out uncompressed, which RFC 7692 allows on a compressing connection.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ocos_hub import hookimpl
from ocos_hub.hub import Hub
from ocos_hub.protocol import Deflate


class CompressionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(
        6, ge=1, le=9, description="zlib level of the shared compressed frames (1 fastest, "
        "9 smallest).")
    min_size: int = Field(
        256, ge=0, description="Event payloads shorter than this many bytes are sent "
        "uncompressed: compressing them costs more than it saves.")


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return CompressionConfig


@hookimpl
def ocos_startup(hub: Hub, config: CompressionConfig) -> None:
    hub.enable_compression(Deflate(level=config.level, min_size=config.min_size))
