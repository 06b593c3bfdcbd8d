"""The `nft` topic: collections, mints and transfers, and the marketplace (listings, sales,
auctions)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, PrivateAttr

from ocos_hub import Event, Topic, hookimpl
from ocos_topics._types import (
    Address,
    AnyOf,
    DecimalStr,
    EventData,
    Id,
    StrictFilter,
    Text,
    Timestamp,
    Token,
    Uri,
    as_set,
)


# Optional on the kinds whose catalog entry lacks them, so that `collection`, `token_id`
# and `account` filters can follow a token through its listing and auction.
def _collection() -> Any:
    return Field(None, description="Collection of the token, when the producer knows it.")


def _token_id() -> Any:
    return Field(None, description="Token, when the producer knows it.")


class CollectionCreated(EventData):
    """A collection (an NFT contract) was deployed."""

    collection: Address = Field(description="Address of the collection.")
    name: Text = Field(description="Display name.")
    creator: Address = Field(description="Account that created it.")
    symbol: Text | None = Field(None, description="Short symbol, if any.")


class NftMinted(EventData):
    """A token was minted."""

    collection: Address = Field(description="Collection of the token.")
    token_id: Id = Field(description="Token id within the collection.")
    owner: Address = Field(description="First owner.")
    uri: Uri = Field(description="Metadata URI.")


class NftTransferred(EventData):
    """A token changed owner."""

    collection: Address = Field(description="Collection of the token.")
    token_id: Id = Field(description="Token id within the collection.")
    from_: Address = Field(alias="from", description="Previous owner.")
    to: Address = Field(description="New owner.")


class ListingCreated(EventData):
    """A token was listed for sale at a fixed price."""

    listing_id: Id = Field(description="Identifier of the listing.")
    collection: Address = Field(description="Collection of the token.")
    token_id: Id = Field(description="Token listed.")
    seller: Address = Field(description="Owner selling it.")
    price: DecimalStr = Field(description="Asking price, in base units of `currency`.")
    currency: Token = Field(description="Token the price is in.")


class ListingCancelled(EventData):
    """A listing was withdrawn before a sale."""

    listing_id: Id = Field(description="Listing withdrawn.")
    collection: Address | None = _collection()
    token_id: Id | None = _token_id()
    seller: Address | None = Field(None, description="Seller who withdrew it.")


class Sale(EventData):
    """A token was sold (from a listing, an auction or a direct offer)."""

    collection: Address = Field(description="Collection of the token.")
    token_id: Id = Field(description="Token sold.")
    seller: Address = Field(description="Previous owner.")
    buyer: Address = Field(description="New owner.")
    price: DecimalStr = Field(description="Price paid, in base units of `currency`.")
    currency: Token = Field(description="Token paid in.")
    listing_id: Id | None = Field(None, description="Listing sold through, if any.")


class AuctionStarted(EventData):
    """An auction opened for a token."""

    auction_id: Id = Field(description="Identifier of the auction.")
    collection: Address = Field(description="Collection of the token.")
    token_id: Id = Field(description="Token auctioned.")
    reserve: DecimalStr = Field(description="Lowest accepted bid, in base units of `currency`.")
    ends_at: Timestamp = Field(description="When bidding closes.")
    seller: Address | None = Field(None, description="Owner auctioning the token.")
    currency: Token | None = Field(None, description="Token bids are in.")


class AuctionBid(EventData):
    """A bid was placed in an auction."""

    auction_id: Id = Field(description="Auction bid in.")
    bidder: Address = Field(description="Account that bid.")
    amount: DecimalStr = Field(description="Bid, in base units of the auction's currency.")
    collection: Address | None = _collection()
    token_id: Id | None = _token_id()


class AuctionSettled(EventData):
    """An auction closed and the token went to the highest bidder."""

    auction_id: Id = Field(description="Auction settled.")
    winner: Address = Field(description="Highest bidder, the new owner.")
    amount: DecimalStr = Field(description="Winning bid, in base units of the auction's currency.")
    collection: Address | None = _collection()
    token_id: Id | None = _token_id()


PARTY_FIELDS = ("owner", "from", "to", "seller", "buyer", "bidder", "winner", "creator")


class NftFilter(StrictFilter):
    """Every field given must match; an event that does not carry a field's data does not
    pass when that field is set. `collection` is a list meaning "any of".

    - `collection` and `token_id` apply to every kind that carries them: always on
      `nft.minted`, `nft.transferred`, `listing.created`, `sale` and `auction.started`
      (`collection.created` has a collection but no token id); on `listing.cancelled`,
      `auction.bid` and `auction.settled` only when the producer filled them in.
    - `account` keeps events where the account is any party: `owner`, `from`, `to`,
      `seller`, `buyer`, `bidder`, `winner` or `creator`.
    """

    collection: AnyOf[Address] | None = Field(
        None, description="Any of these collections (kinds carrying `collection`).")
    token_id: Id | None = Field(
        None, description="This token id (kinds carrying `token_id`); combine with "
        "`collection` to follow one token.")
    account: Address | None = Field(
        None, description="Events where this account is any party (owner, from, to, seller, "
        "buyer, bidder, winner, creator).")

    _collections: frozenset[str] | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        self._collections = as_set(self.collection)

    def matches(self, event: Event) -> bool:
        data = event.data
        if self._collections is not None and data.get("collection") not in self._collections:
            return False
        if self.token_id is not None and data.get("token_id") != self.token_id:
            return False
        return self.account is None or any(
            data.get(name) == self.account for name in PARTY_FIELDS
        )


COLLECTION = "0x1f9840a85d5aF5bf1D1762F925BDADdC4201F984"
SELLER = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
BUYER = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"

topic = Topic(
    name="nft",
    description="Non-fungible tokens: collections, mints and transfers, and the marketplace "
    "with fixed-price listings, sales and auctions.",
    kinds={
        "collection.created": CollectionCreated,
        "nft.minted": NftMinted,
        "nft.transferred": NftTransferred,
        "listing.created": ListingCreated,
        "listing.cancelled": ListingCancelled,
        "sale": Sale,
        "auction.started": AuctionStarted,
        "auction.bid": AuctionBid,
        "auction.settled": AuctionSettled,
    },
    filter_model=NftFilter,
    examples={
        "collection.created": {
            "collection": COLLECTION,
            "name": "OCOS Genesis",
            "creator": SELLER,
            "symbol": "OGEN",
        },
        "nft.minted": {
            "collection": COLLECTION,
            "token_id": "17",
            "owner": SELLER,
            "uri": "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/17.json",
        },
        "nft.transferred": {
            "collection": COLLECTION,
            "token_id": "17",
            "from": SELLER,
            "to": BUYER,
        },
        "listing.created": {
            "listing_id": "lst-301",
            "collection": COLLECTION,
            "token_id": "17",
            "seller": SELLER,
            "price": "150000000000000000000",
            "currency": "OCOS",
        },
        "listing.cancelled": {
            "listing_id": "lst-301",
            "collection": COLLECTION,
            "token_id": "17",
            "seller": SELLER,
        },
        "sale": {
            "collection": COLLECTION,
            "token_id": "17",
            "seller": SELLER,
            "buyer": BUYER,
            "price": "150000000000000000000",
            "currency": "OCOS",
            "listing_id": "lst-301",
        },
        "auction.started": {
            "auction_id": "auc-12",
            "collection": COLLECTION,
            "token_id": "18",
            "reserve": "50000000000000000000",
            "ends_at": "2025-06-02T12:00:00Z",
            "seller": SELLER,
            "currency": "OCOS",
        },
        "auction.bid": {
            "auction_id": "auc-12",
            "bidder": BUYER,
            "amount": "64000000000000000000",
            "collection": COLLECTION,
            "token_id": "18",
        },
        "auction.settled": {
            "auction_id": "auc-12",
            "winner": BUYER,
            "amount": "64000000000000000000",
            "collection": COLLECTION,
            "token_id": "18",
        },
    },
)


@hookimpl
def ocos_topics(config: Any) -> list[Topic]:
    return [topic]
