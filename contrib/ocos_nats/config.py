"""The `[plugins.nats]` section."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from ocos_hub.config import Secret

# NATS subject tokens and stream names the hub writes: no dots, wildcards or spaces.
TOKEN = r"^[A-Za-z0-9_-]+$"


class NatsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Secret = Field(
        "nats://127.0.0.1:4222", description="NATS server URL, or several separated by "
        "commas (a cluster). Credentials in the URL (`nats://user:pass@host:4222`) are "
        "never logged; accepts `env:NAME` or `file:/path`.")
    stream: str = Field(
        "OCOS", pattern=TOKEN, max_length=64, description="JetStream stream of this "
        "deployment's events (created when missing). Producers' entries go to the "
        "work-queue stream `<stream>_INGEST`.")
    prefix: str = Field(
        "ocos", pattern=TOKEN, max_length=64, description="First subject token: events of a "
        "topic are `<prefix>.<topic>`, producers write `<prefix>.ingest.<topic>`, refused "
        "entries land on `<prefix>.dead.<topic>`.")
    max_msgs_per_subject: int | None = Field(
        None, ge=1, description="Events retained per topic (the stream's "
        "`max_msgs_per_subject`). Default: `[history] max_events`.")
    storage: Literal["file", "memory"] = Field(
        "file", description="Where JetStream keeps the streams this plugin creates.")
    replicas: int = Field(1, ge=1, le=5, description="Replicas of the streams it creates.")
    heartbeat: float = Field(
        1.0, gt=0, description="Seconds between the server's idle heartbeats to each node's "
        "reader; three missed ones count as a lost connection and the reader restarts.")
    command_timeout: float = Field(
        5.0, gt=0, description="Seconds a request (publish acknowledgement, message get) may "
        "take before NATS counts as unreachable (publishes then fail with `unavailable`); "
        "also how long the start waits for a first connection.")
    reconnect_wait: float = Field(
        0.5, gt=0, description="Seconds between reconnect attempts to a NATS server.")
    reconnect_max: float = Field(
        5.0, gt=0, description="Longest delay before the reader retries after a failure "
        "(it starts at a tenth of a second and doubles).")
    ingest: bool = Field(
        True, description="Consume `<prefix>.ingest.<topic>`, where producers outside the hub "
        "publish; each entry is validated and published by one node, in order.")
    ingest_ack_wait: float = Field(
        30.0, gt=0, description="Seconds before an ingest entry taken by a node that stopped "
        "without finishing it is handed to another node.")

    def redacted_url(self) -> str:
        """The server URLs without passwords, for messages and logs."""
        shown = []
        for url in self.url.split(","):
            parts = urlsplit(url.strip())
            if parts.password is None and parts.username is None:
                shown.append(url.strip())
                continue
            host = parts.hostname or ""
            if parts.port is not None:
                host = f"{host}:{parts.port}"
            shown.append(urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query,
                                     parts.fragment)))
        return ",".join(shown)
