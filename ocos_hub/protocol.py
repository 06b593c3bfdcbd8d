"""Wire protocol v1 (`ocos.v1`): constants, server frames and WebSocket framing.

Server frames are built here as bytes. An event's frame is encoded once and the same
bytes object is queued to every receiver, so nothing here may depend on the receiver.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

PROTOCOL = "ocos.v1"


class Close(IntEnum):
    """WebSocket close codes used by the hub (protocol.md, Close codes)."""

    NORMAL = 1000
    SHUTDOWN = 1001
    BINARY = 1003
    POLICY = 1008
    TOO_LARGE = 1009
    INTERNAL = 1011
    EXPIRED = 4001
    REVOKED = 4003
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def now_rfc3339() -> str:
    """Server time as RFC 3339 UTC with milliseconds, the protocol's `ts` format."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339(moment: datetime) -> str:
    """Any aware datetime in the protocol's `ts` format."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(obj: dict[str, Any]) -> bytes:
    """One JSON text frame payload, compact UTF-8."""
    return _dumps(obj).encode()


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final WebSocket text frame (RFC 6455 5.2) around `payload`.

    Servers never mask, so a frame built once is valid for every receiver.
    """
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


PING_FRAME = bytes((0x89, 0))


@dataclass(frozen=True, slots=True)
class Deflate:
    """permessage-deflate as the hub uses it: negotiated with server_no_context_takeover,
    so each message is compressed on its own and one compressed frame serves every
    receiver. Payloads shorter than `min_size` are sent uncompressed (RFC 7692 allows
    uncompressed messages on a compressing connection)."""

    level: int = 6
    min_size: int = 256


def deflated_frame(frame: bytes, wbits: int, settings: Deflate) -> bytes:
    """The compressed counterpart (RSV1 set) of a text frame built by `text_frame`."""
    size = frame[1] & 0x7F
    payload = frame[2 + (2 if size == 126 else 8 if size == 127 else 0):]
    if len(payload) < settings.min_size:
        return frame
    compressor = zlib.compressobj(settings.level, zlib.DEFLATED, -wbits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return bytes((0xC1,)) + text_frame(data[:-4])[1:]  # RFC 7692 7.2.1: drop 00 00 ff ff


def frame(obj: dict[str, Any]) -> bytes:
    """A server message as ready-to-write WebSocket frame bytes."""
    return text_frame(encode(obj))


def ack(request_id: Any, op: str, fields: dict[str, Any]) -> bytes:
    return frame({"type": "ack", "id": request_id, "op": op, **fields})


def error(request_id: Any, body: dict[str, Any]) -> bytes:
    return frame({"type": "error", "id": request_id, **body})


def pong(request_id: Any) -> bytes:
    return frame({"type": "pong", "id": request_id, "ts": now_rfc3339()})
