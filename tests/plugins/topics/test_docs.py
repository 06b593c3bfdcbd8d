"""The topic reference pages in docs/topics are generated from the models and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocos_hub.docs import (
    REGENERATE,
    first_party_plugins,
    load_topics,
    main,
    render_pages,
    render_topic,
    stale_pages,
)
from tests.plugins.topics import NAMES
from tests.ticks import TicksPlugin

ROOT = Path(__file__).resolve().parents[3]
PAGES = ROOT / "docs" / "topics"


def test_committed_pages_are_current() -> None:
    pages = render_pages(load_topics(first_party_plugins()))
    assert {f"{name}.md" for name in NAMES} <= set(pages)
    problems = stale_pages(pages, PAGES)
    assert not problems, (
        "docs/topics does not match the topic models:\n  " + "\n  ".join(problems)
        + f"\nregenerate from the repository root with: .venv/bin/{REGENERATE}")


def test_page_documents_kinds_fields_filter_and_example() -> None:
    [(plugin, topic)] = load_topics(["blocks"])
    page = render_topic(topic, plugin)
    assert page.startswith("<!-- Generated") and REGENERATE in page.splitlines()[0]
    assert "# Topic `blocks`" in page and topic.description in page
    for kind in topic.kinds:
        assert f"### `{kind}`" in page
    assert "| `from` | string (address) | yes | Sender (signer) of the transaction. |" in page
    assert "| `value` | string (decimal) | yes |" in page
    assert "| `status` | one of `success`, `failed` | yes |" in page
    assert "| `min_height` | integer ≥ 0 or null |" in page
    assert "does not pass when that field is set" in " ".join(page.split())
    assert '"event": "chain.reorg"' in page and '"fork_height": 1021' in page


def test_any_topic_renders() -> None:
    """A third party's topic renders as well: nothing here knows the catalog."""
    for topic in TicksPlugin().ocos_topics(None):
        page = render_topic(topic)
        assert f"# Topic `{topic.name}`" in page and "| `min_n` |" in page


def test_command_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "topics"
    assert main(["--out", str(out), "--plugin", "dao", "--plugin", "nft"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dao.md", "nft.md"]
    assert main(["--out", str(out), "--plugin", "dao", "--check"]) == 0
    page = out / "dao.md"
    page.write_text(page.read_text() + "hand edit\n")
    assert main(["--out", str(out), "--plugin", "dao", "--check"]) == 1
    err = capsys.readouterr().err
    assert "dao.md: out of date" in err and REGENERATE in err
    assert main(["--out", str(out), "--plugin", "nosuch"]) == 2
