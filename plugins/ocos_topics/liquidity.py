"""The `liquidity` topic: DeFi on OCOS-Chain (pools, swaps, farms, staking, the bridge and
price oracles)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, model_validator

from ocos_hub import Event, Topic, hookimpl
from ocos_topics._types import (
    LAX,
    Address,
    AnyOf,
    Bps,
    DecimalStr,
    EventData,
    Hash,
    Id,
    StrictFilter,
    Token,
    as_set,
)


class BridgeDirection(StrEnum):
    """Which way a bridge transfer goes, seen from OCOS-Chain."""

    IN = "in"
    OUT = "out"


class BridgeStatus(StrEnum):
    """Progress of a bridge transfer: pending on the source chain, confirmed there,
    completed on the destination; failed transfers may be refunded."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    FAILED = "failed"
    REFUNDED = "refunded"


class PoolCreated(EventData):
    """A liquidity pool was created for a token pair."""

    pool_id: Id = Field(description="Identifier of the pool.")
    token_a: Token = Field(description="First token of the pair.")
    token_b: Token = Field(description="Second token of the pair.")
    fee_bps: Bps = Field(description="Swap fee in basis points (30 = 0.3%).")

    @model_validator(mode="after")
    def _pair(self) -> PoolCreated:
        if self.token_a == self.token_b:
            raise ValueError("token_a and token_b must differ")
        return self


class Swap(EventData):
    """A trader swapped one token for another through a pool."""

    pool_id: Id = Field(description="Pool traded against.")
    trader: Address = Field(description="Account that swapped.")
    token_in: Token = Field(description="Token paid in.")
    token_out: Token = Field(description="Token received.")
    amount_in: DecimalStr = Field(description="Amount of `token_in` paid, in base units.")
    amount_out: DecimalStr = Field(description="Amount of `token_out` received, in base units.")
    tx_hash: Hash | None = Field(None, description="Transaction of the swap.")


class _LiquidityChange(EventData):
    pool_id: Id = Field(description="Pool changed.")
    provider: Address = Field(description="Liquidity provider.")
    amount_a: DecimalStr = Field(description="Amount of the pool's `token_a`, in base units.")
    amount_b: DecimalStr = Field(description="Amount of the pool's `token_b`, in base units.")
    shares: DecimalStr | None = Field(None, description="Pool shares minted or burned.")


class LiquidityAdded(_LiquidityChange):
    """A provider deposited both tokens of a pool."""


class LiquidityRemoved(_LiquidityChange):
    """A provider withdrew both tokens of a pool."""


class FarmReward(EventData):
    """A yield farm paid a reward."""

    farm_id: Id = Field(description="Farm that paid.")
    account: Address = Field(description="Account rewarded.")
    token: Token = Field(description="Reward token.")
    amount: DecimalStr = Field(description="Reward, in base units.")


class _StakeChange(EventData):
    account: Address = Field(description="Delegating account.")
    validator: Address = Field(description="Validator delegated to.")
    amount: DecimalStr = Field(description="Native tokens, in base units.")


class Stake(_StakeChange):
    """An account delegated native tokens to a validator."""


class Unstake(_StakeChange):
    """An account withdrew delegated native tokens from a validator."""


class BridgeTransfer(EventData):
    """A cross-chain transfer through the bridge changed status (one event per status)."""

    transfer_id: Id = Field(description="Identifier of the transfer, stable across statuses.")
    direction: Annotated[BridgeDirection, LAX] = Field(
        description="`in` to OCOS-Chain, `out` from it.")
    remote_chain: Id = Field(description="The other chain (`ethereum`, `solana`, ...).")
    token: Token = Field(description="Token moved.")
    amount: DecimalStr = Field(description="Amount moved, in base units.")
    sender: Address = Field(description="Sender on the source chain.")
    recipient: Address = Field(description="Recipient on the destination chain.")
    status: Annotated[BridgeStatus, LAX] = Field(description="Where the transfer stands.")


class OraclePrice(EventData):
    """A price feed published a new round."""

    feed: Id = Field(description="Feed name, base/quote (`OCOS/USD`).")
    price: DecimalStr = Field(
        description="The round's answer in units of 10^-decimals of the quote: with "
        "`decimals` 8, `\"123450000\"` means 1.2345.")
    decimals: Annotated[int, Field(ge=0, le=77)] = Field(
        description="Decimal places of `price`.")
    round: Annotated[int, Field(ge=0)] = Field(description="Round number; grows per feed.")


TOKEN_FIELDS = ("token_a", "token_b", "token_in", "token_out", "token")
ACCOUNT_FIELDS = ("trader", "provider", "account", "sender", "recipient")


class LiquidityFilter(StrictFilter):
    """Every field given must match; an event whose kind does not carry a field's data does
    not pass when that field is set. Lists mean "any of".

    - `pool_id` keeps `pool.created`, `swap`, `liquidity.added` and `liquidity.removed`.
    - `token` keeps events naming one of the tokens: `token_a`/`token_b` of `pool.created`,
      `token_in`/`token_out` of `swap`, `token` of `farm.reward` and `bridge.transfer`.
    - `account` keeps events where the account takes part: `trader` of `swap`, `provider`
      of `liquidity.*`, `account` of `farm.reward`, `stake` and `unstake`, `sender` or
      `recipient` of `bridge.transfer`.
    """

    pool_id: AnyOf[Id] | None = Field(
        None, description="Any of these pools (`pool.created`, `swap`, `liquidity.*`).")
    token: AnyOf[Token] | None = Field(
        None, description="Any of these tokens (`pool.created`, `swap`, `farm.reward`, "
        "`bridge.transfer`).")
    account: Address | None = Field(
        None, description="Events this account takes part in (`swap`, `liquidity.*`, "
        "`farm.reward`, `stake`, `unstake`, `bridge.transfer`).")

    _pools: frozenset[str] | None = PrivateAttr(None)
    _tokens: frozenset[str] | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        self._pools = as_set(self.pool_id)
        self._tokens = as_set(self.token)

    def matches(self, event: Event) -> bool:
        data = event.data
        if self._pools is not None and data.get("pool_id") not in self._pools:
            return False
        if self._tokens is not None and not any(
            data.get(name) in self._tokens for name in TOKEN_FIELDS
        ):
            return False
        return self.account is None or any(
            data.get(name) == self.account for name in ACCOUNT_FIELDS
        )


topic = Topic(
    name="liquidity",
    description="DeFi activity: pools and swaps, liquidity deposits and withdrawals, farm "
    "rewards, staking, bridge transfers and oracle prices.",
    kinds={
        "pool.created": PoolCreated,
        "swap": Swap,
        "liquidity.added": LiquidityAdded,
        "liquidity.removed": LiquidityRemoved,
        "farm.reward": FarmReward,
        "stake": Stake,
        "unstake": Unstake,
        "bridge.transfer": BridgeTransfer,
        "oracle.price": OraclePrice,
    },
    filter_model=LiquidityFilter,
    examples={
        "pool.created": {
            "pool_id": "pool-ocos-usdc",
            "token_a": "OCOS",
            "token_b": "USDC",
            "fee_bps": 30,
        },
        "swap": {
            "pool_id": "pool-ocos-usdc",
            "trader": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
            "token_in": "USDC",
            "token_out": "OCOS",
            "amount_in": "1000000000",
            "amount_out": "812345678901234567890",
            "tx_hash": "0x6c8e0a2b4d6f8c0e2a4b6d8f0c2e4a6b8d0f2c4e6a8b0d2f4c6e8a0b2d4f6c8e",
        },
        "liquidity.added": {
            "pool_id": "pool-ocos-usdc",
            "provider": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "amount_a": "5000000000000000000000",
            "amount_b": "6150000000",
            "shares": "174928.5",
        },
        "liquidity.removed": {
            "pool_id": "pool-ocos-usdc",
            "provider": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "amount_a": "2500000000000000000000",
            "amount_b": "3075000000",
        },
        "farm.reward": {
            "farm_id": "farm-ocos-usdc",
            "account": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
            "token": "OCOS",
            "amount": "12500000000000000000",
        },
        "stake": {
            "account": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
            "validator": "Val1dat0rXz8Qp3sLmN4kJ7hG2fD9cB6vA5tR1yU",
            "amount": "100000000000000000000000",
        },
        "unstake": {
            "account": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
            "validator": "Val1dat0rXz8Qp3sLmN4kJ7hG2fD9cB6vA5tR1yU",
            "amount": "40000000000000000000000",
        },
        "bridge.transfer": {
            "transfer_id": "br-9001",
            "direction": "in",
            "remote_chain": "ethereum",
            "token": "USDC",
            "amount": "250000000",
            "sender": "0x52908400098527886E0F7030069857D2E4169EE7",
            "recipient": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
            "status": "completed",
        },
        "oracle.price": {"feed": "OCOS/USD", "price": "123450000", "decimals": 8, "round": 5531},
    },
)


@hookimpl
def ocos_topics(config: Any) -> list[Topic]:
    return [topic]
