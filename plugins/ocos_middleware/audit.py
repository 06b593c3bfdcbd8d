"""`audit`: a tamper-evident trail of who did what, as hash-chained JSON lines.

One line per fact: `connect`, `disconnect` (with the close code), `auth` (handshake, HTTP
and in-band; success and failure), `handshake_refused`, `subscribe`, `unsubscribe`,
`publish`, other operations by name, `error` (any refused request, with its code), and
`http` (API calls that change state; every call with `http_reads = true`). Every line
has `time`, `event`, `session`, `principal`, `remote` and `request_id` (null where they do
not apply).

Credentials never reach the trail: records are built from an allowlist of fields (topic,
event kind, auth method, codes), never from a request as a whole, and HTTP paths are
logged without their query string (`?token=`, `?api_key=`).

Each line is `{"seq": n, ..., "prev": <hash of line n-1>, "hash": <hash of this line>}`:
`hash` is the SHA-256 of the line's text up to (not including) `,"hash":`, and the first
line's `prev` is 64 zeros. Editing, removing, inserting or reordering lines breaks the
chain at the first damaged line; `ocos-hub audit verify FILE` names it. The chain shows
tampering by someone who cannot rewrite the whole rest of the file and every copy of the
head hash: ship the file (or the head `verify` prints) to other storage to anchor it.
Cutting lines off the end is detectable only against such an anchor.

Lines are written by a thread from a queue, so the event loop never waits for the disk;
the queue is drained at shutdown. A restarted hub continues the chain of the file.

Order 400: after origin and rate limits (refused floods are not audited line by line at
the HTTP level), before metrics, tracing and logging.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, Field

from ocos_hub import HubError, Middleware, Principal, hookimpl
from ocos_hub.appkeys import HUB, PRINCIPAL
from ocos_hub.config import ConfigError, Section
from ocos_hub.hub import Hub
from ocos_hub.middleware import Handler
from ocos_hub.protocol import now_rfc3339
from ocos_hub.session import Session
from ocos_middleware._common import LineWriter, dumps, installed

GENESIS = "0" * 64
_LINE = re.compile(rb'(\{.*),"hash":"([0-9a-f]{64})"\}')
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuditConfig(Section):
    path: str = Field("ocos-hub-audit.jsonl", description="File the trail is appended to "
                      "(created if missing; an existing trail is continued).")
    fsync: bool = Field(False, description="fsync after each batch of lines (survives a "
                        "power loss; costs a disk flush per batch).")
    http_reads: bool = Field(False, description="Also record HTTP calls that only read "
                             "(GET: topics, backfill); calls that change state are always "
                             "recorded.")
    pings: bool = Field(False, description="Also record successful `ping` requests.")


# -- the chain ---------------------------------------------------------------------------


class Chain:
    """Numbers and links records; runs in the writer thread, so lines are in chain order."""

    def __init__(self, seq: int = 0, head: str = GENESIS) -> None:
        self.seq = seq
        self.head = head

    def render(self, record: dict[str, Any]) -> str:
        self.seq += 1
        body = dumps({"seq": self.seq, **record, "prev": self.head})
        prefix = body[:-1]
        self.head = hashlib.sha256(prefix.encode()).hexdigest()
        return f'{prefix},"hash":"{self.head}"}}'


def _last_line(path: Path) -> bytes | None:
    """The last complete line of `path` (None when there is none), reading from the end."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        end = fh.tell()
        chunk, data = 4096, b""
        while end > 0:
            start = max(0, end - chunk)
            fh.seek(start)
            data = fh.read(end - start) + data
            end = start
            if data.count(b"\n") >= 2 or (end == 0 and b"\n" in data):
                break
    if b"\n" not in data:
        return None
    complete = data[: data.rindex(b"\n")]
    return complete.rsplit(b"\n", 1)[-1]


def resume(path: Path) -> Chain:
    """The chain state at the end of an existing trail, or a new chain."""
    if not path.exists() or path.stat().st_size == 0:
        return Chain()
    line = _last_line(path)
    match = _LINE.fullmatch(line) if line is not None else None
    if match is None:
        raise ConfigError(f"[plugins.audit] path: {path} does not end with an audit record; "
                          f"run `ocos-hub audit verify {path}` and move the file away")
    try:
        seq = int(json.loads(match.group(0))["seq"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"[plugins.audit] path: {path}: the last record is damaged; run "
                          f"`ocos-hub audit verify {path}` and move the file away") from None
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        if fh.read(1) != b"\n":  # a line cut by a crash: keep it (verify reports it)
            with path.open("ab") as out:
                out.write(b"\n")
    return Chain(seq, match.group(2).decode())


@dataclass
class Verdict:
    records: int
    head: str
    first_time: str | None = None
    last_time: str | None = None
    bad_line: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.bad_line is None


def verify(path: str | Path) -> Verdict:
    """Check every line's hash, link and sequence number; stop at the first bad line."""
    verdict = Verdict(0, GENESIS)

    def bad(number: int, problem: str) -> Verdict:
        verdict.bad_line, verdict.problem = number, problem
        return verdict

    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                return bad(number, "incomplete line (no newline at the end)")
            match = _LINE.fullmatch(raw[:-1])
            if match is None:
                return bad(number, "not an audit record")
            prefix, digest = match.group(1), match.group(2).decode()
            if hashlib.sha256(prefix).hexdigest() != digest:
                return bad(number, "content does not match its hash (the line was edited)")
            try:
                record = json.loads(raw)
            except ValueError:
                return bad(number, "not valid JSON")
            if record.get("prev") != verdict.head:
                return bad(number, f"does not follow line {number - 1} (a line was removed, "
                           "inserted or reordered before it)" if number > 1 else
                           "the first record does not start a chain")
            if record.get("seq") != verdict.records + 1:
                return bad(number, f"sequence number {record.get('seq')!r}, expected "
                           f"{verdict.records + 1}")
            verdict.records += 1
            verdict.head = digest
            verdict.first_time = verdict.first_time or record.get("time")
            verdict.last_time = record.get("time")
    return verdict


# -- the middleware ----------------------------------------------------------------------


def _principal_id(principal: Principal | None) -> str | None:
    return principal.id if principal is not None else None


class AuditTrail(Middleware):
    """Turns each stage into one allowlisted record on the writer's queue."""

    name: ClassVar[str] = "audit"
    order: ClassVar[int] = 400

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.writer: LineWriter | None = None
        self._started: dict[Session, float] = {}

    async def start(self) -> None:
        path = Path(self.config.path)
        chain = await asyncio.to_thread(resume, path)
        writer = LineWriter(str(path), fsync=self.config.fsync, render=chain.render)
        await asyncio.to_thread(writer.start)
        self.writer = writer

    async def stop(self) -> None:
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)

    def record(self, event: str, *, session: str | None = None, principal: str | None = None,
               remote: str | None = None, request_id: Any = None, **fields: Any) -> None:
        if self.writer is None:
            return
        self.writer.put({"time": now_rfc3339(), "event": event, "session": session,
                         "principal": principal, "remote": remote, "request_id": request_id,
                         **fields})

    def _session_record(self, event: str, session: Session, request_id: Any = None,
                        **fields: Any) -> None:
        self.record(event, session=session.id, principal=_principal_id(session.principal),
                    remote=session.remote, request_id=request_id, **fields)

    async def on_connect(self, session: Session) -> None:
        self._started[session] = asyncio.get_running_loop().time()
        principal = session.principal
        self._session_record("connect", session, path=session.request.path,
                             origin=session.request.headers.get("Origin"),
                             method=principal.method if principal else None)

    async def on_disconnect(self, session: Session, code: int | None) -> None:
        started = self._started.pop(session, None)
        duration = None if started is None else round(
            asyncio.get_running_loop().time() - started, 3)
        self._session_record("disconnect", session, code=code, duration=duration)

    async def on_auth(self, session: Session | None, principal: Principal | None,
                      error: str | None, request: web.Request | None) -> None:
        if session is not None or request is None:
            return  # in-band auth is recorded with its request id by on_reply
        via = "handshake" if request.path == request.app[HUB].config.server.ws_path else "http"
        self.record("auth", principal=_principal_id(principal), remote=request.remote,
                    via=via, ok=error is None, code=error, path=request.path,
                    method=principal.method if principal else None)

    async def on_reply(self, session: Session, request: dict[str, Any] | None,
                       reply: dict[str, Any]) -> None:
        request = request or {}
        op = request.get("type")
        op = op if isinstance(op, str) else None
        request_id = request.get("id")
        fields: dict[str, Any] = {}
        topic = request.get("topic")
        if isinstance(topic, str):
            fields["topic"] = topic
        if op == "auth":
            method = request.get("method")
            self._session_record("auth", session, request_id, via="socket",
                                 ok=reply["type"] != "error", code=reply.get("code"),
                                 method=method if isinstance(method, str) else None)
            return
        if reply["type"] == "error":
            self._session_record("error", session, request_id, op=op, code=reply.get("code"),
                                 **fields)
            return
        if op == "ping" and not self.config.pings:
            return
        if op == "publish":
            kind = request.get("event")
            fields.update(kind=kind if isinstance(kind, str) else None,
                          offset=reply.get("offset"))
        self._session_record(op or "request", session, request_id, **fields)

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == request.app[HUB].config.server.ws_path:
            try:
                return await handler(request)
            except HubError as exc:
                self.record("handshake_refused", principal=_principal_id(request.get(PRINCIPAL)),
                            remote=request.remote, code=exc.code, status=exc.status,
                            origin=request.headers.get("Origin"))
                raise
        if request.method in READS and not self.config.http_reads:
            return await handler(request)
        try:
            response = await handler(request)
        except HubError as exc:
            self._http(request, exc.status, exc.code)
            raise
        except web.HTTPException as exc:
            self._http(request, exc.status, None)
            raise
        self._http(request, response.status, None)
        return response

    def _http(self, request: web.Request, status: int, code: str | None) -> None:
        self.record("http", principal=_principal_id(request.get(PRINCIPAL)),
                    remote=request.remote, method=request.method, path=request.path,
                    status=status, code=code)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return AuditConfig


@hookimpl
def ocos_middleware(config: AuditConfig) -> list[Middleware]:
    return [AuditTrail(config)]


@hookimpl
async def ocos_startup(hub: Hub) -> None:
    for trail in installed(hub, AuditTrail):
        await trail.start()


@hookimpl
async def ocos_shutdown(hub: Hub) -> None:
    for trail in installed(hub, AuditTrail):
        await trail.stop()


# -- `ocos-hub audit ...` ---------------------------------------------------------------


def _verify_command(args: argparse.Namespace) -> int:
    try:
        verdict = verify(args.file)
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    if not verdict.ok:
        print(f"{args.file}: line {verdict.bad_line}: {verdict.problem} "
              f"({verdict.records} records before it verified)", file=sys.stderr)
        return 1
    if verdict.records == 0:
        print(f"{args.file}: ok, empty")
        return 0
    print(f"{args.file}: ok, {verdict.records} records from {verdict.first_time} to "
          f"{verdict.last_time}; head {verdict.head}")
    return 0


def register_command(parser: argparse.ArgumentParser) -> None:
    """`ocos-hub audit verify FILE`: check a trail's hash chain."""
    parser.description = "Tools for the audit trail written by the audit plugin."
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser("verify", help="check a trail's hash chain; exit 1 naming "
                               "the first bad line")
    check.add_argument("file", help="the trail (JSON lines)")
    check.set_defaults(func=_verify_command)
