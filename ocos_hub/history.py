"""Pages of a topic's retained history, one implementation for every way to read them.

The REST backfill (`GET /api/v1/topics/{topic}/events`) and the `history` socket op of
the extension plugin both answer with `history_page`, so they page, filter and describe
history the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocos_hub.errors import HubError

if TYPE_CHECKING:
    from ocos_hub.auth import Principal
    from ocos_hub.broker import Broker, HistoryPage
    from ocos_hub.topics import Topic


async def history_page(
    broker: Broker,
    topic: Topic,
    principal: Principal | None,
    *,
    since: int | None = None,
    before: int | None = None,
    limit: int,
) -> dict[str, Any]:
    """At most `limit` retained events, oldest first, as the socket sends them.

    `since`: events after that offset, paging forward. `before`: events before it, paging
    back. Neither: the newest events, paging back. Events the principal may not see are
    left out, but paging is over retained offsets, so a page may hold fewer than `limit`
    events (none, even) and still have a `next`. `next` is the cursor to merge into the
    next request (`{"since": n}` or `{"before": n}`), null when there is nothing further
    that way. `first_offset`/`last_offset` are the retained range: a `since` below
    `first_offset - 1` means events were trimmed. Raises `invalid_message` for both
    `since` and `before`.
    """
    if since is not None and before is not None:
        raise HubError("invalid_message", "give at most one of 'since' and 'before'",
                       {"field": "before"})
    page: HistoryPage
    cursor: dict[str, int] | None = None
    if since is not None:
        page = await broker.read(topic.name, since, limit)
        if page.events and page.events[-1].offset < page.last_offset:
            cursor = {"since": page.events[-1].offset}
    else:
        if before is None:
            page = await broker.read_last(topic.name, limit)
        else:
            page = await broker.read_before(topic.name, before, limit)
        if page.events and page.events[0].offset > page.first_offset:
            cursor = {"before": page.events[0].offset}
    visible = topic.visible
    return {
        "topic": topic.name,
        "epoch": page.epoch,
        "first_offset": page.first_offset,
        "last_offset": page.last_offset,
        "events": [event.wire() for event in page.events
                   if visible is None or visible(principal, event)],
        "next": cursor,
    }
