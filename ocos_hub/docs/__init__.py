"""Documentation generated from the code, so that it cannot drift from it.

One module per document: `topics` (the Markdown page of each topic), `reference`
(docs/configuration.md and docs/writing-plugins.md), `asyncapi`, `openapi`, `graphql`
and `html` (the documents a running hub serves, built from a `Catalog` of what its
enabled plugins provide), `web` (their routes) and `command` (`ocos-hub docs`).
The core documents whatever plugins are enabled and knows none of them.

`python -m ocos_hub.docs --out docs/topics` writes the topic pages alone.
"""

from __future__ import annotations

from ocos_hub.docs.topics import (
    DISTRIBUTION,
    EXAMPLE_TS,
    MARKER,
    REGENERATE,
    field_rows,
    first_party_plugins,
    load_topics,
    main,
    render_pages,
    render_topic,
    stale_pages,
    type_label,
)

__all__ = [
    "DISTRIBUTION",
    "EXAMPLE_TS",
    "MARKER",
    "REGENERATE",
    "field_rows",
    "first_party_plugins",
    "load_topics",
    "main",
    "render_pages",
    "render_topic",
    "stale_pages",
    "type_label",
]
