"""The dashboard in headless Chromium against a real hub fed by the chain simulator.

What is asserted is what a person at the page would see: blocks scrolling in, a vote
moving a tally, the connection coming back after the hub restarted with nothing lost, and
a visible warning when the hub could not recover. Offsets the page has shown come from
its debug hook (`window.ocosDashboard`), the hub's from its REST backfill.

Timeouts are generous (a loaded two-core machine); they only stop a broken test from
hanging, except where a delay is itself the requirement (blocks within 5 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from ocos_auth.apikey import key_hash
from tests.e2e.hubs import TOPICS, ServedHub, demo_config, free_port

WAIT = 30_000  # ms: the bound for anything that should happen "soon"
PROPOSAL = "prop-e2e-1"
OCOS = 10**18


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ServedHub]:
    hub = ServedHub(demo_config(free_port(), tmp_path / "history.sqlite3"))
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def until(page: Page, script: str, arg: Any = None) -> None:
    """Wait until `script` (a function of `arg`) is true in the page. Not Playwright's
    `wait_for_function`: that evaluates strings, which the page's CSP forbids."""
    deadline = asyncio.get_running_loop().time() + WAIT / 1000
    while not await page.evaluate(script, arg):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {script} ({arg!r})")
        await asyncio.sleep(0.1)


async def shown(page: Page, topic: str) -> list[int]:
    return list(await page.evaluate("topic => ocosDashboard.offsets(topic)", topic))


async def head(page: Page) -> int:
    text = await page.get_by_test_id("head-height").text_content() or ""
    return int(text.lstrip("#")) if text.startswith("#") else -1


async def open_dashboard(page: Page, hub: ServedHub) -> None:
    await page.goto(hub.url + "/")
    await expect(page.get_by_test_id("conn-state")).to_have_text("connected", timeout=WAIT)


async def test_live_chain_votes_filters_and_inspector(
        served: ServedHub, page: Page, page_console: list[str]) -> None:
    await page.goto(served.url + "/")
    # Blocks within 5 s of the page loading, then new ones as the chain grows.
    await expect(page.get_by_test_id("blocks-feed").locator("tr").first).to_be_visible(
        timeout=5_000)
    await expect(page.get_by_test_id("conn-state")).to_have_text("connected")
    await expect(page.get_by_test_id("principal")).to_have_text("anonymous")
    first = await head(page)
    await expect(page.get_by_test_id("head-height")).not_to_have_text(f"#{first}", timeout=WAIT)
    assert await head(page) > first
    await expect(page.get_by_test_id("tx-feed").locator("tr").first).to_be_visible()
    for topic in TOPICS:
        await expect(page.get_by_test_id(f"topic-status-{topic}")).to_have_attribute(
            "data-state", "live", timeout=WAIT)

    # A proposal and its votes, published through the hub's HTTP API.
    now = datetime.now(UTC)
    await served.publish(("governance", "proposal.created", {
        "proposal_id": PROPOSAL, "title": "Fund the e2e test suite", "proposer": "Alice1111",
        "voting_starts": iso(now), "voting_ends": iso(now + timedelta(days=1))}))
    row = page.get_by_test_id(f"proposal-{PROPOSAL}")
    await expect(row).to_contain_text("Fund the e2e test suite", timeout=WAIT)
    yes = page.get_by_test_id(f"tally-{PROPOSAL}-yes")
    no = page.get_by_test_id(f"tally-{PROPOSAL}-no")
    await expect(yes).to_have_text("yes 0 · 0 OCOS")
    await served.publish(("governance", "vote.cast", {
        "proposal_id": PROPOSAL, "voter": "Bob11111", "choice": "yes",
        "weight": str(1500 * OCOS)}))
    await expect(yes).to_have_text("yes 1 · 1,500 OCOS", timeout=WAIT)
    await served.publish(
        ("governance", "vote.cast", {"proposal_id": PROPOSAL, "voter": "Carol111",
                                     "choice": "no", "weight": str(250 * OCOS)}),
        ("governance", "proposal.status", {"proposal_id": PROPOSAL, "status": "passed"}))
    await expect(no).to_have_text("no 1 · 250 OCOS", timeout=WAIT)
    await expect(yes).to_have_text("yes 1 · 1,500 OCOS")
    await expect(page.get_by_test_id(f"status-{PROPOSAL}")).to_have_text("passed")

    # The inspector shows the raw event behind a row.
    await row.click()
    inspector = page.get_by_test_id("inspector")
    await expect(inspector).to_contain_text(f'"proposal_id": "{PROPOSAL}"')
    await expect(inspector).to_contain_text('"event": "proposal.status"')

    # The filter box is the topic's `filter`, the where box its `where`: the governance
    # view starts over with this proposal's yes votes only.
    await page.get_by_test_id("topic-filters-governance").locator("summary").click()
    await page.get_by_test_id("filter-governance").fill(f'{{"proposal_id": ["{PROPOSAL}"]}}')
    await page.get_by_test_id("where-governance").fill(
        '{"event": {"in": ["proposal.created", "vote.cast"]}, "data.choice": {"ne": "no"}}')
    await page.get_by_test_id("apply-governance").click()
    await expect(page.get_by_test_id("proposals").locator("tr")).to_have_count(1, timeout=WAIT)
    await expect(no).to_have_text("no 0 · 0 OCOS", timeout=WAIT)
    await expect(yes).to_have_text("yes 1 · 1,500 OCOS")
    await expect(page.get_by_test_id(f"status-{PROPOSAL}")).to_have_text("pending")

    # A filter the topic does not declare is refused by the hub, and the page says so.
    await page.get_by_test_id("topic-filters-blocks").locator("summary").click()
    await page.get_by_test_id("filter-blocks").fill('{"colour": "red"}')
    await page.get_by_test_id("apply-blocks").click()
    await expect(page.get_by_test_id("topic-error-blocks")).to_contain_text(
        "invalid_filter", timeout=WAIT)
    await expect(page.get_by_test_id("topic-status-blocks")).to_have_text("error")

    # Analytics: the hub's own figures and the charts.
    await expect(page.get_by_test_id("hub-connections")).to_have_text("1", timeout=WAIT)
    await until(page, "() => Number(document.getElementById('chart-tps').dataset.points) >= 2")
    assert [line for line in page_console if line.startswith(("error", "pageerror"))] == []


async def test_resumes_after_a_restart_without_losing_or_repeating_events(
        served: ServedHub, page: Page, page_console: list[str]) -> None:
    await open_dashboard(page, served)
    for topic in TOPICS:
        await expect(page.get_by_test_id(f"topic-status-{topic}")).to_have_attribute(
            "data-state", "live", timeout=WAIT)
    await until(page, "() => ocosDashboard.offsets('blocks').length >= 20")

    await served.stop()
    await expect(page.get_by_test_id("conn-state")).to_have_text("reconnecting", timeout=WAIT)
    before = {topic: await shown(page, topic) for topic in TOPICS}
    await asyncio.sleep(2)  # the page retries against a closed port meanwhile

    await served.start()  # same port, same SQLite file: offsets continue
    restarted_at = served.last_offsets["blocks"] + 1  # the new process's first block
    assert before["blocks"][-1] < restarted_at
    # Published while the page is (probably) still away; it must get them on resuming.
    now = datetime.now(UTC)
    [created] = await served.publish(("governance", "proposal.created", {
        "proposal_id": PROPOSAL, "title": "Published during the outage", "proposer": "Alice111",
        "voting_starts": iso(now), "voting_ends": iso(now + timedelta(hours=1))}))

    await expect(page.get_by_test_id("conn-state")).to_have_text("connected", timeout=WAIT)
    await expect(page.get_by_test_id("conn-detail")).to_contain_text(
        "nothing missed", timeout=WAIT)
    for topic in TOPICS:
        status = page.get_by_test_id(f"topic-status-{topic}")
        await expect(status).to_have_attribute("data-recovered", "true", timeout=WAIT)
        await expect(status).to_contain_text("recovered")
    await expect(page.get_by_test_id("recovery-banner")).to_be_hidden()
    await expect(page.get_by_test_id(f"proposal-{PROPOSAL}")).to_contain_text(
        "Published during the outage", timeout=WAIT)
    # Live again after the replay: blocks the hub publishes from now on arrive too.
    live_from = (await served.hub.broker.position("blocks")).offset
    await until(page, "last => ocosDashboard.offsets('blocks').at(-1) >= last", live_from + 20)

    for topic in TOPICS:
        offsets = await shown(page, topic)
        assert offsets[:len(before[topic])] == before[topic], topic
        if topic == "governance":
            assert created in offsets
        # No gap and no duplicate: exactly the hub's history over the same range.
        first, last = offsets[0], offsets[-1]
        history = [o for o in await served.history(topic, first - 1) if o <= last]
        assert offsets == history == list(range(first, last + 1)), topic
    assert max(before["blocks"]) < restarted_at < live_from < max(await shown(page, "blocks"))
    assert [line for line in page_console if line.startswith("pageerror")] == []


async def test_shows_when_the_hub_could_not_recover(page: Page) -> None:
    # History in memory: a restarted hub starts a new epoch and has none of the old events.
    hub = ServedHub(demo_config(free_port(), None))
    await hub.start()
    try:
        await open_dashboard(page, hub)
        await expect(page.get_by_test_id("recovery-banner")).to_be_hidden()
        await until(page, "() => ocosDashboard.offsets('blocks').length >= 5")
        await hub.stop()
        await expect(page.get_by_test_id("conn-state")).to_have_text("reconnecting",
                                                                      timeout=WAIT)
        await hub.start()
        banner = page.get_by_test_id("recovery-banner")
        await expect(banner).to_be_visible(timeout=WAIT)
        await expect(banner).to_contain_text("Recovery failed")
        await expect(banner).to_contain_text("blocks")
        await expect(banner).to_contain_text("new epoch")
        status = page.get_by_test_id("topic-status-blocks")
        await expect(status).to_have_attribute("data-recovered", "false")
        await expect(status).to_contain_text("NOT recovered")
        # The page carries on with the hub's new lineage.
        height = await page.get_by_test_id("head-height").text_content()
        await expect(page.get_by_test_id("head-height")).not_to_have_text(str(height),
                                                                            timeout=WAIT)
    finally:
        await hub.stop()


async def test_credentials_in_the_fragment_name_the_principal_and_its_topics(
        page: Page, tmp_path: Path) -> None:
    key = "ocos_e2e_dashboard_key"
    hub = ServedHub(demo_config(free_port(), tmp_path / "history.sqlite3", access={
        "require_auth": True, "anonymous": []}, plugins={
        "enabled": [*TOPICS, "simulator", "replay", "filters", "history", "dashboard",
                    "apikey"],
        "apikey": {"keys": [{"label": "ops", "hash": key_hash(key),
                             "scopes": ["subscribe:blocks", "subscribe:analytics"]}]}}))
    await hub.start()
    try:
        await page.goto(f"{hub.url}/#api_key={key}")
        await expect(page.get_by_test_id("conn-state")).to_have_text("connected", timeout=WAIT)
        await expect(page.get_by_test_id("principal")).to_have_text("apikey:ops (apikey)")
        # The topic list is what this principal may see: welcome.topics.
        rows = page.get_by_test_id("topic-list").locator(".topic")
        await expect(rows).to_have_count(2)
        await expect(page.get_by_test_id("topic-row-governance")).to_have_count(0)
        await expect(page.get_by_test_id("blocks-feed").locator("tr").first).to_be_visible(
            timeout=WAIT)
        # Without the key the hub refuses the handshake, and the page keeps trying.
        other = await page.context.new_page()
        await other.goto(hub.url + "/")
        await expect(other.get_by_test_id("conn-state")).to_have_text("reconnecting",
                                                                       timeout=WAIT)
        await expect(other.get_by_test_id("principal")).to_have_text("\u2013")  # no welcome
    finally:
        await hub.stop()
