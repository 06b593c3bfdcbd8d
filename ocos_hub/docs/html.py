"""A readable HTML page of a hub's API (`GET /docs`), from the same catalog as the others.

One self-contained page: inline CSS, no script, no external asset, so it works offline
and under a strict Content-Security-Policy. It shows how to connect and resume, the
enabled auth methods, every request type with its fields, every topic with its kinds,
fields, filter and an example frame, the error codes and the HTTP routes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from pydantic import BaseModel

from ocos_hub.auth import API_KEY, TOKEN
from ocos_hub.docs.asyncapi import example_frame
from ocos_hub.docs.catalog import DESCRIPTION, HANDSHAKE_LABELS, TITLE, Catalog
from ocos_hub.docs.topics import field_rows
from ocos_hub.protocol import PROTOCOL

SOCKET_URL = "<!--socket-url-->"  # escaped text cannot contain it; filled in per request
STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:62rem;margin:0 auto;padding:1rem 1.5rem;
color:#1d232a;background:#fff}
h1{margin-bottom:0}h2{border-bottom:1px solid #d5dbe1;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin-top:2rem}code,pre{font:13px/1.4 ui-monospace,monospace;background:#f3f5f7}
code{padding:0 .2rem}pre{padding:.6rem .8rem;overflow-x:auto;border-radius:4px}
table{border-collapse:collapse;margin:.6rem 0;width:100%}
th,td{border:1px solid #d5dbe1;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}nav ul{columns:2}.muted{color:#5b6670}
"""


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _inline(text: str) -> str:
    """Escaped text with `backticks` as code."""
    parts = escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out += ["<tr>", *(f"<td>{cell}</td>" for cell in row), "</tr>"]
    out.append("</tbody></table>")
    return "".join(out)


def _fields(model: type[BaseModel], skip: Iterable[str] = ()) -> str:
    rows = [(_code(name), _inline(label), "yes" if required else "no", _inline(description))
            for name, label, required, description in
            field_rows(model.model_json_schema(by_alias=True)) if name not in skip]
    if not rows:
        return "<p class=muted>No fields.</p>"
    return _table(("field", "type", "required", "description"), rows)


def _pre(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"


def _anchor(*parts: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else "-" for ch in part) for part in parts)


def html_page(catalog: Catalog, paths: Mapping[str, Mapping[str, Any]]) -> str:
    """The page, with `SOCKET_URL` where the socket's URL goes."""
    body: list[str] = []
    add = body.append
    add(f"<header><h1>{escape(TITLE)}</h1><p class=muted>version {escape(catalog.version)} · "
        f"plugins: {escape(', '.join(catalog.enabled) or 'none')}</p>"
        f"<p>{_inline(DESCRIPTION)}</p>"
        f"<p>Socket: <code>{SOCKET_URL}</code>, subprotocol {_code(PROTOCOL)}. "
        "Machine-readable: <a href=\"asyncapi.json\">AsyncAPI 3.0</a> (socket), "
        "<a href=\"openapi.json\">OpenAPI 3.1</a> (HTTP), "
        "<a href=\"schema.graphql\">GraphQL SDL</a> (topics).</p></header>")
    nav = ["<li><a href=\"#connecting\">Connecting and resuming</a></li>",
           "<li><a href=\"#auth\">Authentication</a></li>",
           "<li><a href=\"#requests\">Requests</a></li>",
           *(f"<li><a href=\"#{_anchor('topic', t.name)}\">Topic {_code(t.name)}</a></li>"
             for t in catalog.topics),
           "<li><a href=\"#errors\">Errors</a></li>", "<li><a href=\"#http\">HTTP API</a></li>"]
    add(f"<nav><h2>Contents</h2><ul>{''.join(nav)}</ul></nav>")

    add("<section id=connecting><h2>Connecting and resuming</h2><ol>"
        f"<li>Open a WebSocket to <code>{SOCKET_URL}</code> offering {_code(PROTOCOL)}. "
        "One JSON object per text frame.</li>"
        "<li>The first frame is <code>welcome</code>: the topics you may subscribe to, "
        "your principal, your limits.</li>"
        "<li>Send <code>{\"type\": \"subscribe\", \"id\": 1, \"topic\": ..., \"filter\": "
        "{...}}</code>. The <code>ack</code> carries <code>offset</code> and "
        "<code>epoch</code>; events follow, each with its <code>offset</code>.</li>"
        "<li>Remember the last offset you processed and the epoch. After a disconnect, "
        "reconnect (with backoff) and subscribe with <code>\"since\": {\"offset\": n, "
        "\"epoch\": e}</code>: you get every event after n, then live ones, none twice. "
        "<code>recovered: false</code> in the ack means some were lost (history trimmed, or "
        "a new epoch).</li></ol>"
        f"<p>The server sends WebSocket pings every {catalog.heartbeat:g} s; clients that "
        "cannot see them may send <code>ping</code> requests. Frames are limited to "
        f"{catalog.max_message_bytes} bytes, subscriptions to {catalog.max_subscriptions} "
        "per connection.</p></section>")

    auth = ["<section id=auth><h2>Authentication</h2>"]
    anonymous = ", ".join(_code(s) for s in catalog.anonymous) or "nothing"
    auth.append("<p>This hub refuses connections without credentials.</p>" if catalog.require_auth
                else f"<p>Connections without credentials may: {anonymous}.</p>")
    if not catalog.auth_methods:
        auth.append("<p>No auth method is enabled.</p>")
    kinds = catalog.handshake_kinds()
    if kinds:
        auth.append("<p>At the handshake and on HTTP calls: "
                    + "; ".join(_inline(HANDSHAKE_LABELS[k]) for k in (TOKEN, API_KEY)
                                if k in kinds) + ".</p>")
    for method in catalog.auth_methods:
        auth.append(f"<h3 id=\"{_anchor('auth', method.name)}\">Method {_code(method.name)}</h3>")
        if method.summary:
            auth.append(f"<p>{_inline(method.summary)}</p>")
        if method.handshake:
            auth.append("<p>At the handshake: " + "; ".join(
                _inline(HANDSHAKE_LABELS[k]) for k in method.handshake) + ".</p>")
        auth.append(f"<p>In band: <code>{{\"type\": \"auth\", \"method\": "
                    f"\"{escape(method.name)}\", ...}}</code> with:</p>")
        if method.credentials_model is not None:
            auth.append(_fields(method.credentials_model))
    add("".join(auth) + "</section>")

    ops = ["<section id=requests><h2>Requests</h2><p>Every request has <code>type</code> "
           "and an optional <code>id</code> (a string of at most 64 characters or an integer) "
           "that its one reply echoes: <code>ack</code> (with <code>op</code>), "
           "<code>pong</code> or <code>error</code>.</p>"]
    for op in catalog.operations:
        ops.append(f"<h3 id=\"{_anchor('request', op.name)}\">{_code(op.name)}"
                   f"{'' if op.core else ' <small class=muted>(extension)</small>'}</h3>")
        if op.summary:
            ops.append(f"<p>{_inline(op.summary)}</p>")
        ops.append(_fields(op.request_model, skip=("type", "id")))
        if op.reply_model is not None:
            ops.append("<p>Ack fields:</p>" + _fields(op.reply_model))
    add("".join(ops) + "</section>")

    for topic in catalog.topics:
        part = [f"<section id=\"{_anchor('topic', topic.name)}\"><h2>Topic "
                f"{_code(topic.name)}</h2><p>{_inline(topic.description)}</p>"
                f"<p>Needs {_code('subscribe:' + topic.name)}. Kinds: "
                + ", ".join(f"<a href=\"#{_anchor('event', topic.name, k)}\">{_code(k)}</a>"
                            for k in topic.kinds) + ".</p>"]
        if topic.visible is not None:
            part.append("<p>Delivery is narrowed per event: a subscriber receives only the "
                        "events this topic lets its principal see, replayed ones included.</p>")
        part.append("<h3>Filter</h3>")
        if topic.filter_model is None:
            part.append("<p>No filter fields; a <code>filter</code> is refused.</p>")
        else:
            part.append("<p>The <code>filter</code> object of <code>subscribe</code>; every "
                        "field is optional and applies to replayed events too.</p>")
            part.append(_fields(topic.filter_model))
        for kind, model in topic.kinds.items():
            part.append(f"<h3 id=\"{_anchor('event', topic.name, kind)}\">{_code(kind)}</h3>")
            doc = " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())
            if doc:
                part.append(f"<p>{_inline(doc)}</p>")
            part.append(_fields(model))
            frame = example_frame(topic, kind)
            if frame is not None:
                part.append("<p>Example:</p>" + _pre(frame))
        add("".join(part) + "</section>")

    codes = catalog.error_codes()
    add("<section id=errors><h2>Errors</h2><p>Socket errors are <code>{\"type\": \"error\", "
        "\"id\", \"code\", \"message\", \"details\"?}</code>; HTTP errors carry the same "
        "<code>{code, message, details?}</code> body with the status below. Plugins may add "
        "codes.</p>" + _table(("code", "HTTP status"),
                              ((_code(code), str(status)) for code, status in codes.items()))
        + "</section>")

    rows = []
    for path, item in paths.items():
        for verb, operation in item.items():
            if isinstance(operation, Mapping):
                rows.append((_code(verb.upper()), _code(path),
                             _inline(str(operation.get("summary", "")))))
    add("<section id=http><h2>HTTP API</h2>" + _table(("method", "path", "what"), rows)
        + "</section>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(TITLE)} API</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def with_socket_url(page: str, url: str) -> str:
    return page.replace(SOCKET_URL, escape(url))
