"""`ocos-hub docs`: write the generated documentation to a directory.

    ocos-hub docs --out site --config hub.toml    # everything, for the hub hub.toml describes
    ocos-hub docs --out docs --markdown           # the committed reference pages only
    ocos-hub docs --out docs --check              # exit 1 when they are out of date

The Markdown reference (configuration.md, writing-plugins.md, topics/<topic>.md) covers
every first-party plugin, whatever the config. The API documents (api/asyncapi.json,
api/openapi.json, api/schema.graphql, api/index.html) are those the configured hub serves
at /asyncapi.json, /openapi.json, /schema.graphql and /docs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ocos_hub.config import load_config
from ocos_hub.docs.asyncapi import Endpoint
from ocos_hub.docs.reference import REGENERATE, render_reference
from ocos_hub.docs.topics import first_party_plugins, load_topics, render_pages, stale_pages

API_FILES = ("asyncapi.json", "openapi.json", "schema.graphql", "index.html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="directory to write to")
    parser.add_argument("--config", "-c", help="TOML config of the hub the API documents "
                        "describe (default: the built-in defaults, no plugins)")
    parser.add_argument("--demo", action="store_true", help="describe the demo profile's hub")
    parser.add_argument("--base-url", help="the hub's public URL in the API documents, such "
                        "as https://hub.example.com (default: from [server])")
    parser.add_argument("--markdown", action="store_true",
                        help="write only the Markdown reference (what docs/ commits)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the "
                        "Markdown reference in --out is missing or out of date")


def markdown_pages() -> dict[str, str]:
    """Relative path to text of every generated Markdown page."""
    pages = render_reference()
    topics = render_pages(load_topics(first_party_plugins()))
    pages.update({f"topics/{name}": text for name, text in topics.items()})
    return pages


def stale(pages: dict[str, str], out: Path) -> list[str]:
    problems = stale_pages({n[7:]: t for n, t in pages.items() if n.startswith("topics/")},
                           out / "topics")
    for name, text in pages.items():
        if "/" in name:
            continue
        path = out / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date")
    return problems


def api_documents(args: argparse.Namespace) -> dict[str, str]:
    """File name to text of the documents the configured hub serves."""
    from ocos_hub.docs.web import Documents
    from ocos_hub.hub import Hub
    from ocos_hub.plugins import PluginHost

    config = load_config(args.config, profile="demo" if args.demo else None)
    host = config.server.host if config.server.host not in ("0.0.0.0", "::", "") else "localhost"
    endpoint = Endpoint.from_url(args.base_url or f"http://{host}:{config.server.port}")
    docs = Documents.build(Hub(config, PluginHost(config)))
    return {
        "asyncapi.json": json.dumps(docs.asyncapi_for(endpoint), indent=1, ensure_ascii=False),
        "openapi.json": json.dumps(docs.openapi_for(endpoint), indent=1, ensure_ascii=False),
        "schema.graphql": docs.graphql,
        "index.html": docs.html_for(endpoint),
    }


def run(args: argparse.Namespace) -> int:
    pages = markdown_pages()
    if args.check:
        problems = stale(pages, args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"regenerate with: {REGENERATE}", file=sys.stderr)
        return 1 if problems else 0
    documents = {} if args.markdown else {f"api/{n}": t for n, t in api_documents(args).items()}
    for name, text in {**pages, **documents}.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    topics = {name[7:] for name in pages if name.startswith("topics/")}
    for gone in stale_pages({}, args.out / "topics"):  # generated pages of topics now gone
        path = Path(gone.split(":")[0])
        if path.name not in topics:
            path.unlink()
    print(f"wrote {len(pages)} Markdown page(s)" + (f" and {len(documents)} API document(s)"
                                                    if documents else "") + f" to {args.out}")
    return 0
