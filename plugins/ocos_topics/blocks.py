"""The `blocks` topic: new blocks, transactions, finality and reorganisations."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, PrivateAttr

from ocos_hub import Event, Topic, hookimpl
from ocos_topics._types import (
    LAX,
    Address,
    AnyOf,
    Count,
    DecimalStr,
    EventData,
    Hash,
    Height,
    StrictFilter,
    Timestamp,
    as_set,
)


class TxStatus(StrEnum):
    """Outcome of a transaction's execution."""

    SUCCESS = "success"
    FAILED = "failed"


class BlockNew(EventData):
    """A block was appended to the canonical chain (not yet final)."""

    height: Height = Field(description="Height of the block; the genesis block is 0.")
    hash: Hash = Field(description="Hash of the block.")
    parent_hash: Hash = Field(description="Hash of the block at `height - 1`.")
    timestamp: Timestamp = Field(description="Time the proposer stamped on the block.")
    proposer: Address = Field(description="Validator that proposed the block.")
    tx_count: Count = Field(description="Number of transactions in the block.")


class TxNew(EventData):
    """A transaction was included in a block."""

    hash: Hash = Field(description="Hash of the transaction.")
    block_height: Height = Field(description="Height of the block that includes it.")
    from_: Address = Field(alias="from", description="Sender (signer) of the transaction.")
    to: Address = Field(description="Recipient account or called contract.")
    value: DecimalStr = Field(description="Native tokens transferred, in base units.")
    fee: DecimalStr = Field(description="Fee paid, in base units of the native token.")
    status: Annotated[TxStatus, LAX] = Field(description="Whether execution succeeded.")


class BlockFinalized(EventData):
    """A block became final: it can no longer be reorganised away."""

    height: Height = Field(description="Height of the finalized block.")
    hash: Hash = Field(description="Hash of the finalized block.")


class ChainReorg(EventData):
    """The canonical chain switched to another fork; blocks above `fork_height` were replaced.

    Clients that keep blocks or transactions above `fork_height` should drop them: the
    replacing blocks follow as `block.new` events.
    """

    fork_height: Height = Field(description="Height of the last block both forks share.")
    depth: Annotated[int, Field(ge=1)] = Field(description="Number of blocks replaced.")
    old_head: Hash = Field(description="Hash of the head of the abandoned fork.")
    new_head: Hash = Field(description="Hash of the head of the new canonical fork.")


# Where each kind carries its height, for `min_height`.
HEIGHT_FIELD = {
    "block.new": "height",
    "block.finalized": "height",
    "tx.new": "block_height",
    "chain.reorg": "fork_height",
}


class BlocksFilter(StrictFilter):
    """Every field given must match; an event whose kind does not carry a field's data does
    not pass when that field is set.

    - `address` keeps `tx.new` events whose `from` or `to` is any of the addresses.
    - `min_height` keeps events at or above the height: `height` of `block.new` and
      `block.finalized`, `block_height` of `tx.new`, `fork_height` of `chain.reorg`.
    - `status` keeps `tx.new` events with that status.
    """

    address: AnyOf[Address] | None = Field(
        None, description="Any of these addresses as `from` or `to` (`tx.new` only).")
    min_height: Height | None = Field(
        None, description="Lowest height kept: `height`, `block_height` or `fork_height` "
        "(every kind).")
    status: Annotated[TxStatus, LAX] | None = Field(
        None, description="Transaction status (`tx.new` only).")

    _addresses: frozenset[str] | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        self._addresses = as_set(self.address)

    def matches(self, event: Event) -> bool:
        data = event.data
        if self._addresses is not None and (
            event.kind != "tx.new"
            or (data["from"] not in self._addresses and data["to"] not in self._addresses)
        ):
            return False
        if self.min_height is not None:
            height = data.get(HEIGHT_FIELD.get(event.kind, ""))
            if height is None or height < self.min_height:
                return False
        return self.status is None or (
            event.kind == "tx.new" and data["status"] == self.status.value
        )


topic = Topic(
    name="blocks",
    description="The chain as it grows: every new block and its transactions, blocks "
    "becoming final, and reorganisations that replace recent blocks.",
    kinds={
        "block.new": BlockNew,
        "tx.new": TxNew,
        "block.finalized": BlockFinalized,
        "chain.reorg": ChainReorg,
    },
    filter_model=BlocksFilter,
    examples={
        "block.new": {
            "height": 1024,
            "hash": "0x9a1f3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a",
            "parent_hash": "0x4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d",
            "timestamp": "2025-06-01T12:00:00Z",
            "proposer": "Val1dat0rXz8Qp3sLmN4kJ7hG2fD9cB6vA5tR1yU",
            "tx_count": 2,
        },
        "tx.new": {
            "hash": "0x5e7a9c1b3d5f7e9a1c3b5d7f9e1a3c5b7d9f1e3a5c7b9d1f3e5a7c9b1d3f5e7a",
            "block_height": 1024,
            "from": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
            "to": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "value": "2500000000000000000",
            "fee": "21000000000000",
            "status": "success",
        },
        "block.finalized": {
            "height": 1000,
            "hash": "0x2c4e6a8b0d2f4e6a8c0b2d4f6e8a0c2b4d6f8e0a2c4b6d8f0e2a4c6b8d0f2e4a",
        },
        "chain.reorg": {
            "fork_height": 1021,
            "depth": 2,
            "old_head": "0x7f9b1d3e5a7c9f1b3d5e7a9c1f3b5d7e9a1c3f5b7d9e1a3c5f7b9d1e3a5c7f9b",
            "new_head": "0x1d3f5b7a9c1e3d5f7b9a1c3e5d7f9b1a3c5e7d9f1b3a5c7e9d1f3b5a7c9e1d3f",
        },
    },
)


@hookimpl
def ocos_topics(config: Any) -> list[Topic]:
    return [topic]
