"""The `[plugins.redis]` section."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ocos_hub.config import Secret


class RedisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Secret = Field(
        "redis://127.0.0.1:6379/0", description="Redis URL (`redis://[:password@]host:port/db`, "
        "`rediss://` for TLS). Accepts `env:NAME` or `file:/path` to keep the password out "
        "of the file.")
    prefix: str = Field(
        "ocos", min_length=1, max_length=100, pattern=r"^\S+$",
        description="Prefix of every key of this deployment (streams, offsets, epoch, "
        "sessions, nonces, rate limits), so several deployments share one Redis. On Redis "
        "Cluster, write it as a hash tag (`{ocos}`) so a publish's keys share a slot.")
    broker: bool = Field(
        True, description="Provide the broker. Set false to use only the shared stores "
        "(sessions, nonces, rate limits) beside another broker plugin.")
    max_len: int | None = Field(
        None, ge=1, description="Events retained per topic stream (`XADD MAXLEN ~`: at least "
        "this many are kept). Default: `[history] max_events`.")
    block_ms: int = Field(
        1000, ge=10, le=60_000, description="Longest wait of one blocking read (`XREAD "
        "BLOCK`); also how soon a newly watched topic or a lost connection is noticed.")
    read_count: int = Field(
        1000, ge=1, description="Most events read per topic stream by one `XREAD`.")
    command_timeout: float = Field(
        5.0, gt=0, description="Seconds a command may take before Redis counts as unreachable "
        "(publishes then fail with `unavailable`).")
    reconnect_min: float = Field(
        0.1, gt=0, description="First delay in seconds before reconnecting after Redis was "
        "lost; it doubles up to `reconnect_max`.")
    reconnect_max: float = Field(5.0, gt=0, description="Longest delay between reconnects.")
    ingest: bool = Field(
        True, description="Take part in ingesting `<prefix>:ingest`, where producers outside "
        "the hub write events: one node at a time validates and publishes them, in order.")
    dead_letter_max_len: int = Field(
        10_000, ge=1, description="Refused ingest entries kept in `<prefix>:ingest:dead`.")

    @model_validator(mode="after")
    def _backoff_order(self) -> RedisConfig:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        return self

    def redacted_url(self) -> str:
        """The URL without its password, for messages and logs."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
