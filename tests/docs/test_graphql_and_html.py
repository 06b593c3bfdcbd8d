"""GET /schema.graphql parses as GraphQL SDL; GET /docs is a self-contained readable page."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
    build_schema,
    validate_schema,
)

from ocos_hub.docs.asyncapi import example_frame
from ocos_hub.docs.graphql import pascal, safe_name
from tests.conftest import StartHub
from tests.docs.helpers import full_hub


async def test_sdl_has_a_subscription_per_topic_and_a_type_per_kind(
        start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    response = await running.http.get("/schema.graphql")
    assert response.status == 200 and response.content_type == "text/plain"
    schema = build_schema(await response.text())
    assert validate_schema(schema) == []
    subscription = schema.subscription_type
    assert subscription is not None
    topics = running.hub.topics
    assert set(subscription.fields) == {safe_name(name) for name in topics}
    for name, topic in topics.items():
        field = subscription.fields[safe_name(name)]
        args = set(field.args)
        assert {"events", "since", "rewind"} <= args
        if topic.filter_model is not None:
            assert set(topic.filter_model.model_fields) <= args, name
        envelope = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        assert isinstance(envelope, GraphQLObjectType)
        union = envelope.fields["data"].type.of_type
        assert isinstance(union, GraphQLUnionType)
        assert {t.name for t in union.types} == {
            safe_name(pascal(name)) + pascal(kind) for kind in topic.kinds}

    blocks = subscription.fields["blocks"]
    assert isinstance(blocks.args["status"].type, GraphQLEnumType)
    assert isinstance(blocks.args["address"].type, GraphQLList)
    tx = schema.get_type("BlocksTxNew")
    assert isinstance(tx, GraphQLObjectType)
    assert str(tx.fields["value"].type) == "Decimal!"  # a decimal string, not a Float
    assert str(tx.fields["from"].type) == "String!"
    assert str(tx.fields["block_height"].type) == "Long!"
    assert "oracle_feeds" not in subscription.fields  # not enabled, not documented


class Assets(HTMLParser):
    """Every URL a page would load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset") and value is not None:
                self.urls.append((tag, value))


async def test_docs_page_is_readable_and_self_contained(start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    response = await running.http.get("/docs")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    assets = Assets()
    assets.feed(page)
    assert "script" not in assets.tags and "link" not in assets.tags and "img" not in assets.tags
    for tag, url in assets.urls:  # only anchors within the page or to the sibling documents
        assert tag == "a" and (url.startswith("#") or url in (
            "asyncapi.json", "openapi.json", "schema.graphql")), (tag, url)
    assert f"ws://{running.http.host}:{running.http.port}/ws" in page

    for method in ("jwt", "apikey", "session", "signature"):
        assert f'id="auth-{method}"' in page
    for op in running.hub.operations:
        assert f'id="request-{op}"' in page
    for name, topic in running.hub.topics.items():
        assert f'id="topic-{name}"' in page and topic.description.split("`")[0][:40] in page
        for kind in topic.kinds:
            assert f"<code>{kind}</code>" in page
        if topic.filter_model is not None:
            for field in topic.filter_model.model_fields:
                assert f"<code>{field}</code>" in page
        for kind in topic.examples:
            frame = example_frame(topic, kind)
            text = json.dumps(frame, indent=2, ensure_ascii=False)
            assert text.replace('"', "&quot;") in page
    assert "<code>invalid_filter</code>" in page and "<code>/api/v1/events</code>" in page


async def test_docs_can_be_switched_off(start_hub: StartHub) -> None:
    running = await start_hub({"server": {"docs": False}})
    for path in ("/docs", "/asyncapi.json", "/openapi.json", "/schema.graphql"):
        assert (await running.http.get(path)).status == 404
