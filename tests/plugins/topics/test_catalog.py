"""Every kind of every catalog topic: its model takes its example and refuses bad data, in
Python and over `POST /api/v1/events`. Cases are derived from each model's JSON Schema, so a
field added later is covered too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ocos_hub import Topic
from tests.conftest import StartHub
from tests.plugins.topics import MODULES, NAMES, TEST_AUTH, bearer

# The catalog (spec/events.md): kinds and their required data fields.
CATALOG: dict[str, dict[str, set[str]]] = {
    "blocks": {
        "block.new": {"height", "hash", "parent_hash", "timestamp", "proposer", "tx_count"},
        "tx.new": {"hash", "block_height", "from", "to", "value", "fee", "status"},
        "block.finalized": {"height", "hash"},
        "chain.reorg": {"fork_height", "depth", "old_head", "new_head"},
    },
    "governance": {
        "proposal.created": {"proposal_id", "title", "proposer", "voting_starts",
                             "voting_ends"},
        "vote.cast": {"proposal_id", "voter", "choice", "weight"},
        "proposal.status": {"proposal_id", "status"},
        "proposal.executed": {"proposal_id", "tx_hash", "success"},
    },
    "dao": {
        "dao.created": {"dao_id", "name", "creator"},
        "member.joined": {"dao_id", "member", "role"},
        "member.left": {"dao_id", "member"},
        "member.role_changed": {"dao_id", "member", "role"},
        "decision.recorded": {"dao_id", "decision_id", "outcome"},
    },
    "liquidity": {
        "pool.created": {"pool_id", "token_a", "token_b", "fee_bps"},
        "swap": {"pool_id", "trader", "token_in", "token_out", "amount_in", "amount_out"},
        "liquidity.added": {"pool_id", "provider", "amount_a", "amount_b"},
        "liquidity.removed": {"pool_id", "provider", "amount_a", "amount_b"},
        "farm.reward": {"farm_id", "account", "token", "amount"},
        "stake": {"account", "validator", "amount"},
        "unstake": {"account", "validator", "amount"},
        "bridge.transfer": {"transfer_id", "direction", "remote_chain", "token", "amount",
                            "sender", "recipient", "status"},
        "oracle.price": {"feed", "price", "decimals", "round"},
    },
    "nft": {
        "collection.created": {"collection", "name", "creator"},
        "nft.minted": {"collection", "token_id", "owner", "uri"},
        "nft.transferred": {"collection", "token_id", "from", "to"},
        "listing.created": {"listing_id", "collection", "token_id", "seller", "price",
                            "currency"},
        "listing.cancelled": {"listing_id"},
        "sale": {"collection", "token_id", "seller", "buyer", "price", "currency"},
        "auction.started": {"auction_id", "collection", "token_id", "reserve", "ends_at"},
        "auction.bid": {"auction_id", "bidder", "amount"},
        "auction.settled": {"auction_id", "winner", "amount"},
    },
    "identity": {
        "identity.registered": {"subject", "did"},
        "kyc.status": {"subject", "status", "provider"},
        "soulbound.issued": {"subject", "token_id", "issuer", "kind"},
        "soulbound.revoked": {"subject", "token_id", "issuer", "kind"},
        "reputation.changed": {"subject", "old", "new", "reason"},
    },
}
FILTER_FIELDS = {
    "blocks": {"address", "min_height", "status"},
    "governance": {"proposal_id", "voter"},
    "dao": {"dao_id", "member"},
    "liquidity": {"pool_id", "token", "account"},
    "nft": {"collection", "token_id", "account"},
    "identity": {"subject"},
}
# Enum values the catalog spells out.
CATALOG_ENUMS = {
    ("blocks", "tx.new", "status"): {"success", "failed"},
    ("governance", "vote.cast", "choice"): {"yes", "no", "abstain"},
    ("governance", "proposal.status", "status"): {
        "pending", "active", "passed", "rejected", "queued", "executed", "failed", "cancelled"},
    ("liquidity", "bridge.transfer", "direction"): {"in", "out"},
    ("identity", "kyc.status", "status"): {"pending", "verified", "rejected", "expired"},
}

MAX_UINT256 = str(2**256 - 1)
NOT_DECIMALS: list[Any] = ["", "abc", "-1", "+1", "1e18", "1.", ".5", "01", "1.2.3", " 1",
                           "1\n", "0x10", "١٢", "NaN", "1" * 79, 12, 1.5, None]
WRONG_TYPE: dict[str, Any] = {"string": 123, "integer": "7", "boolean": "true"}


def all_kinds() -> list[tuple[str, str]]:
    return [(name, kind) for name in NAMES for kind in MODULES[name].topic.kinds]


def topic_of(name: str) -> Topic:
    topic: Topic = MODULES[name].topic
    return topic


def model_of(name: str, kind: str) -> type[BaseModel]:
    return topic_of(name).kinds[kind]


def example(name: str, kind: str) -> dict[str, Any]:
    return dict(topic_of(name).examples[kind])


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null schemas a property may take, with `$ref`s resolved."""
    options = prop.get("anyOf", [prop])
    out = []
    for option in options:
        one = defs[option["$ref"].rsplit("/", 1)[-1]] if "$ref" in option else option
        if one.get("type") != "null":
            out.append(one)
    return out


def fields(name: str, kind: str) -> dict[str, dict[str, Any]]:
    """Wire name -> its (single, non-null) schema."""
    schema = model_of(name, kind).model_json_schema()
    defs = schema.get("$defs", {})
    out = {}
    for field, prop in schema["properties"].items():
        [one] = _resolve(prop, defs)
        out[field] = one
    return out


def rejects(name: str, kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        model_of(name, kind).model_validate(data)
    return info.value.errors()


def locs(errors: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(err["loc"]) for err in errors}


@pytest.mark.parametrize("name", NAMES)
def test_topic_matches_the_catalog(name: str) -> None:
    topic = topic_of(name)
    assert topic.name == name and topic.description
    assert set(topic.kinds) == set(CATALOG[name])
    assert set(topic.examples) == set(topic.kinds)
    assert topic.filter_model is not None
    assert set(topic.filter_model.model_fields) == FILTER_FIELDS[name]
    assert topic.filter_model.__doc__ and "does not" in topic.filter_model.__doc__
    for kind, model in topic.kinds.items():
        schema = model.model_json_schema()
        assert set(schema["required"]) == CATALOG[name][kind], kind
        assert schema["additionalProperties"] is False, kind
        assert re.fullmatch(r"[A-Z][A-Za-z]+", model.__name__), model
        assert model.__doc__, model
        for field, prop in schema["properties"].items():
            assert prop.get("description"), f"{kind}.{field} has no description"


@pytest.mark.parametrize(("name", "kind", "field"), sorted(CATALOG_ENUMS))
def test_catalog_enums(name: str, kind: str, field: str) -> None:
    [schema] = [fields(name, kind)[field]]
    assert set(schema["enum"]) == CATALOG_ENUMS[(name, kind, field)]


@pytest.mark.parametrize(("name", "kind"), all_kinds())
def test_example_validates_and_round_trips(name: str, kind: str) -> None:
    data = example(name, kind)
    model = model_of(name, kind).model_validate(data)
    dumped = topic_of(name).validate_data(kind, data)
    assert dumped == model.model_dump(mode="json")
    assert {k: v for k, v in dumped.items() if v is not None} == data
    assert topic_of(name).validate_data(kind, dumped) == dumped


@pytest.mark.parametrize(("name", "kind"), all_kinds())
def test_missing_required_field(name: str, kind: str) -> None:
    for field in CATALOG[name][kind]:
        data = example(name, kind)
        del data[field]
        errors = rejects(name, kind, data)
        assert (field,) in locs(errors) and errors[0]["type"] == "missing", field


@pytest.mark.parametrize(("name", "kind"), all_kinds())
def test_wrong_types(name: str, kind: str) -> None:
    for field, schema in fields(name, kind).items():
        for bad in ({"nested": 1}, [1], WRONG_TYPE.get(schema.get("type", ""), {})):
            errors = rejects(name, kind, {**example(name, kind), field: bad})
            assert (field,) in locs(errors), (field, bad)
        if schema.get("type") == "integer":
            for bad in (1.5, True, -1 if schema.get("minimum", -1) >= 0 else None):
                if bad is not None:
                    assert (field,) in locs(rejects(name, kind, {**example(name, kind),
                                                                 field: bad})), (field, bad)


@pytest.mark.parametrize(("name", "kind"), all_kinds())
def test_unknown_field_refused(name: str, kind: str) -> None:
    errors = rejects(name, kind, {**example(name, kind), "colour": "red"})
    assert locs(errors) == {("colour",)} and errors[0]["type"] == "extra_forbidden"
    if "from" in fields(name, kind):  # the wire name only, never the Python one
        data = example(name, kind)
        data["from_"] = data.pop("from")
        assert ("from",) in locs(rejects(name, kind, data))


@pytest.mark.parametrize(("name", "kind"), all_kinds())
def test_bad_enum_values(name: str, kind: str) -> None:
    for field, schema in fields(name, kind).items():
        if "enum" not in schema:
            continue
        for value in schema["enum"]:
            model_of(name, kind).model_validate({**example(name, kind), field: value})
        for bad in ("bogus", schema["enum"][0].upper(), ""):
            errors = rejects(name, kind, {**example(name, kind), field: bad})
            assert errors[0]["loc"] == (field,) and errors[0]["type"] == "enum", (field, bad)


@pytest.mark.parametrize(("name", "kind"), all_kinds())
def test_decimal_amounts(name: str, kind: str) -> None:
    decimals = [f for f, schema in fields(name, kind).items() if schema.get("format") == "decimal"]
    for field in decimals:
        for good in ("0", "7", "0.000001", "1500.25", MAX_UINT256, f"{MAX_UINT256}.5"):
            data = {**example(name, kind), field: good}
            assert topic_of(name).validate_data(kind, data)[field] == good
        for bad in NOT_DECIMALS:
            if bad is None and field not in CATALOG[name][kind]:
                continue  # optional amounts may be null
            errors = rejects(name, kind, {**example(name, kind), field: bad})
            assert errors[0]["loc"] == (field,), (field, bad)


def test_amount_like_fields_are_decimal_strings() -> None:
    """Token amounts, values, prices and weights are decimal strings, never JSON numbers."""
    amount = re.compile(r"value|fee|weight|amount(_\w+)?|price|reserve|shares")
    seen = 0
    for name, kind in all_kinds():
        for field, schema in fields(name, kind).items():
            if amount.fullmatch(field):
                assert schema.get("format") == "decimal", (name, kind, field)
                seen += 1
    assert seen >= 20


@pytest.mark.parametrize(
    ("name", "kind", "field", "bad"),
    [
        ("blocks", "block.new", "timestamp", "2025-06-01 12:00:00"),
        ("blocks", "block.new", "timestamp", "2025-06-01T12:00:00+02:00"),
        ("blocks", "block.new", "timestamp", "2025-02-30T12:00:00Z"),
        ("blocks", "block.new", "hash", ""),
        ("blocks", "tx.new", "to", "has space"),
        ("blocks", "chain.reorg", "depth", 0),
        ("governance", "proposal.created", "voting_ends", "2025-06-01T11:59:59Z"),
        ("governance", "proposal.executed", "success", 1),
        ("liquidity", "pool.created", "fee_bps", 10_001),
        ("liquidity", "pool.created", "token_b", "OCOS"),
        ("nft", "nft.minted", "uri", "no scheme"),
        ("identity", "identity.registered", "did", "ocos:abc"),
        ("identity", "reputation.changed", "new", "135"),
    ],
)
def test_field_rules(name: str, kind: str, field: str, bad: Any) -> None:
    rejects(name, kind, {**example(name, kind), field: bad})


def test_timestamps_with_fractions_are_kept_verbatim() -> None:
    ts = "2025-06-01T12:00:00.123456789Z"
    assert topic_of("blocks").validate_data(
        "block.new", {**example("blocks", "block.new"), "timestamp": ts})["timestamp"] == ts


@pytest.mark.parametrize("name", NAMES)
async def test_over_http(start_hub: StartHub, name: str) -> None:
    """Examples publish and reach a subscriber unchanged; bad data is a 422 `invalid_event`
    with the validation errors, and publishes nothing."""
    # identity events reach no anonymous connection: read them as an admin
    hub = await start_hub(plugins=[TEST_AUTH], enabled=[name, TEST_AUTH[0]])
    client = await hub.connect(**bearer("admin:auditor"))
    assert (await client.request("subscribe", topic=name))["type"] == "ack"
    topic = topic_of(name)

    async def refused(kind: str, data: dict[str, Any], field: str) -> None:
        resp = await hub.http.post("/api/v1/events", json={"topic": name, "event": kind,
                                                            "data": data})
        body = await resp.json()
        assert resp.status == 422 and body["code"] == "invalid_event", body
        assert [field] in [err["loc"] for err in body["details"]], body
        assert field in body["message"] or not body["details"][0]["loc"], body

    for kind in topic.kinds:
        required = sorted(CATALOG[name][kind])
        missing = example(name, kind)
        del missing[required[0]]
        await refused(kind, missing, required[0])
        for field, schema in fields(name, kind).items():
            await refused(kind, {**example(name, kind), field: {"nested": 1}}, field)
            if "enum" in schema:
                await refused(kind, {**example(name, kind), field: "bogus"}, field)
            if schema.get("format") == "decimal":
                await refused(kind, {**example(name, kind), field: "1e18"}, field)
                await refused(kind, {**example(name, kind), field: 10**18}, field)

    offsets = await hub.publish(*[(name, kind, example(name, kind)) for kind in topic.kinds])
    assert offsets == list(range(1, len(topic.kinds) + 1))  # nothing refused was published
    got = await client.events(len(topic.kinds))
    for frame, kind in zip(got, topic.kinds, strict=True):
        assert frame["event"] == kind
        assert frame["data"] == topic.validate_data(kind, example(name, kind))


async def test_big_amounts_survive_the_wire(start_hub: StartHub) -> None:
    hub = await start_hub(enabled=["liquidity"])
    client = await hub.connect()
    await client.request("subscribe", topic="liquidity")
    await hub.publish(("liquidity", "swap", {**example("liquidity", "swap"),
                                             "amount_in": MAX_UINT256,
                                             "amount_out": f"{MAX_UINT256}.000000000000000001"}))
    [frame] = await client.events(1)
    assert frame["data"]["amount_in"] == MAX_UINT256
    assert frame["data"]["amount_out"] == f"{MAX_UINT256}.000000000000000001"


async def test_topics_listed_with_schemas(start_hub: StartHub) -> None:
    hub = await start_hub(enabled=list(NAMES))
    resp = await hub.http.get("/api/v1/topics")
    listed = {t["name"]: t for t in (await resp.json())["topics"]}
    assert set(listed) == set(NAMES)
    for name in NAMES:
        assert set(listed[name]["events"]) == set(CATALOG[name])
        assert set(listed[name]["filter"]["properties"]) == FILTER_FIELDS[name]
        tx = listed["blocks"]["events"]["tx.new"]
        assert "from" in tx["properties"] and "from_" not in tx["properties"]
