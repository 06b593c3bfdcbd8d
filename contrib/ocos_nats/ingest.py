"""The ingest subjects: how a producer outside the hub (the chain node) publishes over NATS.

A producer publishes `{"event": K, "data": {...}, "key": optional}` to
`<prefix>.ingest.<topic>` (JetStream publish, so it gets an acknowledgement once the entry
is stored). The entries land in the work-queue stream `<stream>_INGEST`, read by every node
through one durable consumer that hands out a single entry at a time (`max_ack_pending` 1):
one node validates it against the topic's model, exactly like an HTTP publish, publishes it
with the next offset, and acknowledges it; only then is the next entry handed out, so
events keep the order the producer wrote them in, whichever node publishes them.

An entry whose node stops before acknowledging it is handed to another node after
`ingest_ack_wait` seconds. It is published with `Nats-Msg-Id` `ingest:<sequence>` (or
`key:<topic>:<key>` when the producer gave a key), so JetStream drops the second copy
within its duplicate window, and a producer retrying a publish it is unsure of with the same
key publishes once. A refused entry is acknowledged and republished on
`<prefix>.dead.<topic>` with the reason in the `Ocos-Error` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import TYPE_CHECKING, Any

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from ocos_hub import HubError
from ocos_hub.tasks import cancelling
from ocos_nats.broker import NATS_DOWN

if TYPE_CHECKING:
    from ocos_hub.hub import Hub
    from ocos_nats.broker import NatsBroker

log = logging.getLogger("ocos_nats.ingest")

CONSUMER = "ocos-hub"
FIELDS = frozenset({"event", "data", "key"})


class Refused(Exception):
    """An ingest entry that cannot be published; its reason goes with the dead letter."""


class Ingest:
    """One node's puller on the shared ingest consumer."""

    def __init__(self, broker: NatsBroker, hub: Hub) -> None:
        self.broker = broker
        self.hub = hub
        self.config = broker.config
        self.prefix = f"{broker.prefix}.ingest."
        self.published = 0
        self.refused = 0

    async def run(self) -> None:
        delay = 0.1
        while not self.broker.closing:
            try:
                await self._pull()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from None
                if isinstance(exc, (*NATS_DOWN, HubError)):
                    log.debug("ingest paused: %s", type(exc).__name__)
                else:
                    log.exception("the ingest loop failed; restarting it")
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(self.config.reconnect_max, delay * 2)

    async def _pull(self) -> None:
        js = self.broker.js
        wanted = api.ConsumerConfig(
            durable_name=CONSUMER, filter_subject=f"{self.prefix}*",
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.config.ingest_ack_wait,
            max_ack_pending=1, deliver_policy=api.DeliverPolicy.ALL,
            num_replicas=self.config.replicas)
        try:
            await js.consumer_info(self.broker.ingest_stream, CONSUMER)
        except nats.js.errors.NotFoundError:
            await js.add_consumer(self.broker.ingest_stream, wanted)
        puller = await js.pull_subscribe_bind(CONSUMER, self.broker.ingest_stream)
        try:
            while True:
                try:
                    msgs = await puller.fetch(1, timeout=max(1.0, self.config.heartbeat))
                except TimeoutError:  # nothing to ingest (nats' fetch timeouts subclass it)
                    if cancelling():
                        raise asyncio.CancelledError from None
                    continue
                for msg in msgs:
                    try:
                        await self.process(msg)
                    except asyncio.CancelledError:
                        # stopping: hand the entry to another node now, not after ack_wait
                        with contextlib.suppress(Exception):
                            await msg.nak()
                        raise
        finally:
            await puller.unsubscribe()

    async def process(self, msg: Msg) -> None:
        """Publish one entry (or dead-letter it), then acknowledge it."""
        seq = msg.metadata.sequence.stream
        topic = msg.subject[len(self.prefix):]
        try:
            kind, data, key = self.parse(topic, msg.data)
        except Refused as exc:
            self.refused += 1
            log.warning("ingest: refused entry %d on %s: %s", seq, msg.subject, exc)
            await self.broker.js.publish(
                f"{self.broker.prefix}.dead.{topic}", msg.data, stream=self.broker.stream,
                headers={"Ocos-Error": " ".join(str(exc).split()), "Ocos-Ingest-Seq": str(seq),
                         "Nats-Msg-Id": f"dead:{seq}"})
        else:
            msg_id = f"key:{topic}:{key}" if key is not None else f"ingest:{seq}"
            ((event, fresh),) = await self.broker.append([(topic, kind, data)], [msg_id])
            if fresh:
                self.published += 1
            else:
                log.info("ingest: entry %d was already published as %s #%d", seq, topic,
                         event.offset)
        await msg.ack_sync()

    def parse(self, topic_name: str, body: bytes) -> tuple[str, dict[str, Any], str | None]:
        """Check an entry as the HTTP API checks a publish: kind, clean data and key."""
        topic = self.hub.topics.get(topic_name)
        if topic is None:
            raise Refused(f"unknown_topic: no topic {topic_name!r}")
        try:
            entry: Any = json.loads(body)
        except ValueError as exc:
            raise Refused(f"invalid_json: the entry is not JSON: {exc}") from None
        if not isinstance(entry, dict):
            raise Refused("invalid_message: an entry is a JSON object")
        unknown = sorted(set(entry) - FIELDS)
        if unknown:
            raise Refused(f"invalid_message: unknown fields {unknown}; an entry has event, "
                          "data, key")
        kind, data, key = entry.get("event"), entry.get("data"), entry.get("key")
        if not isinstance(kind, str):
            raise Refused("invalid_message: field 'event' must be a string")
        if not isinstance(data, dict):
            raise Refused("invalid_event: field 'data' must be a JSON object")
        if key is not None and not (isinstance(key, str) and 1 <= len(key) <= 200):
            raise Refused("invalid_message: field 'key' must be a string of 1 to 200 characters")
        try:
            clean = topic.validate_data(kind, data)
        except HubError as exc:
            details = f" {json.dumps(exc.details, separators=(',', ':'))}" if exc.details else ""
            raise Refused(f"{exc.code}: {exc.message}{details}") from None
        return kind, clean, key
