"""`logging`: structured access and error logs, one JSON object per line.

Every line has `time`, `level`, `logger` (`ocos_hub.access` or `ocos_hub.error`) and
`event`:

- `http` (access; INFO below 400, WARNING for 4xx, ERROR for 5xx): method, path, status,
  code, duration_ms, remote, principal, request_id (X-Request-ID), user_agent;
- `connect` / `disconnect` (access, INFO): session, principal, remote; code, duration_ms;
- `request` (access, DEBUG): session, op, request_id, topic, duration_ms;
- `request_failed` (error, WARNING; ERROR for internal_error): the same plus code;
- `handshake_refused` (error, WARNING): code, status, remote, origin;
- `auth_failed` (error, WARNING): code, via, remote, session;
- `exception` (error, the record's level): the core's own log records, with
  `capture_core` (source, message, traceback).

`level` drops what is below it. Paths are logged without query strings (credentials may
ride there); no header but Origin, User-Agent and X-Request-ID is read.

Output goes to stderr, stdout or a file from a writer thread (the event loop never waits
on it), or, with `output = "logging"`, to the stdlib loggers of those names.

Two middleware objects: the HTTP access log at order 10, outermost, so that calls refused
by origin (100) and ratelimit (200) are logged too; the socket and error logs at 700.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from typing import Any, ClassVar, Literal

from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from ocos_hub import HubError, Middleware, Principal, hookimpl
from ocos_hub.appkeys import HUB, PRINCIPAL
from ocos_hub.config import Section
from ocos_hub.hub import Hub
from ocos_hub.middleware import Handler
from ocos_hub.protocol import now_rfc3339
from ocos_hub.session import Session
from ocos_middleware._common import LineWriter, dumps, installed

ACCESS = "ocos_hub.access"
ERROR = "ocos_hub.error"
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
          "ERROR": logging.ERROR}


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written: DEBUG adds every socket request, WARNING "
        "keeps refusals and errors only.")
    output: str = Field("stderr", description="`stderr`, `stdout`, a file path (appended), "
                        "or `logging` (the stdlib loggers ocos_hub.access / ocos_hub.error).")
    capture_core: bool = Field(
        False, description="Also write the core's own log records (tracebacks of internal "
        "errors) as JSON lines, instead of passing them to the process's log handlers.")

    @model_validator(mode="after")
    def _no_loop(self) -> LoggingConfig:
        if self.capture_core and self.output == "logging":
            raise ValueError("capture_core needs an output other than 'logging'")
        return self


class JsonLog:
    """Level filter and sink shared by the two middleware objects of one app."""

    def __init__(self, config: LoggingConfig) -> None:
        self.config = config
        self.threshold = LEVELS[config.level]
        self.writer = None if config.output == "logging" else LineWriter(config.output)
        self._captured: _CoreHandler | None = None
        self._propagate = True

    def enabled(self, level: int) -> bool:
        return level >= self.threshold

    def emit(self, level: int, logger: str, event: str, **fields: Any) -> None:
        if level < self.threshold:
            return
        record = {"time": now_rfc3339(), "level": logging.getLevelName(level),
                  "logger": logger, "event": event, **fields}
        if self.writer is None:
            logging.getLogger(logger).log(level, dumps(record))
        else:
            self.writer.put(record)

    async def start(self) -> None:
        if self.writer is not None:
            await asyncio.to_thread(self.writer.start)
        if self.config.capture_core:
            core = logging.getLogger("ocos_hub")
            self._captured = _CoreHandler(self)
            self._propagate = core.propagate
            core.addHandler(self._captured)
            core.propagate = False

    async def stop(self) -> None:
        if self._captured is not None:
            core = logging.getLogger("ocos_hub")
            core.removeHandler(self._captured)
            core.propagate = self._propagate
            self._captured = None
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)


class _CoreHandler(logging.Handler):
    """The core's log records as `exception` lines."""

    def __init__(self, log: JsonLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"source": record.name, "message": record.getMessage()}
        if record.exc_info:
            fields["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        self.log.emit(record.levelno, ERROR, "exception", **fields)


def _principal(principal: Principal | None) -> str | None:
    return principal.id if principal is not None else None


class HttpAccessLog(Middleware):
    """One `http` line per API call, refusals by outer middleware included."""

    name: ClassVar[str] = "logging.http"
    order: ClassVar[int] = 10

    def __init__(self, log: JsonLog) -> None:
        self.log = log

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == request.app[HUB].config.server.ws_path:
            return await handler(request)  # sockets: connect/disconnect and refusals at 700
        started = time.perf_counter()
        status, code = 500, None
        try:
            response = await handler(request)
            status = response.status
            return response
        except HubError as exc:
            status, code = exc.status, exc.code
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            level = (logging.INFO if status < 400 else
                     logging.WARNING if status < 500 else logging.ERROR)
            self.log.emit(
                level, ACCESS, "http", method=request.method, path=request.path,
                status=status, code=code,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                remote=request.remote, principal=_principal(request.get(PRINCIPAL)),
                request_id=request.headers.get("X-Request-ID"),
                user_agent=request.headers.get("User-Agent"))


class SocketLog(Middleware):
    """Connections, requests and refusals on the socket."""

    name: ClassVar[str] = "logging"
    order: ClassVar[int] = 700

    def __init__(self, log: JsonLog) -> None:
        self.log = log
        self._connected: dict[Session, float] = {}
        self._requests: dict[Session, float] = {}

    def _session(self, session: Session) -> dict[str, Any]:
        return {"session": session.id, "principal": _principal(session.principal),
                "remote": session.remote}

    async def on_http(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != request.app[HUB].config.server.ws_path:
            return await handler(request)
        try:
            return await handler(request)
        except HubError as exc:
            self.log.emit(logging.WARNING, ERROR, "handshake_refused", code=exc.code,
                          status=exc.status, remote=request.remote,
                          origin=request.headers.get("Origin"))
            raise

    async def on_connect(self, session: Session) -> None:
        self._connected[session] = time.perf_counter()
        self.log.emit(logging.INFO, ACCESS, "connect", **self._session(session),
                      origin=session.request.headers.get("Origin"),
                      user_agent=session.request.headers.get("User-Agent"))

    async def on_disconnect(self, session: Session, code: int | None) -> None:
        started = self._connected.pop(session, None)
        self._requests.pop(session, None)
        duration = None if started is None else round((time.perf_counter() - started) * 1000)
        self.log.emit(logging.INFO, ACCESS, "disconnect", **self._session(session), code=code,
                      duration_ms=duration)

    async def on_request(self, session: Session, request: dict[str, Any]) -> None:
        self._requests[session] = time.perf_counter()

    async def on_reply(self, session: Session, request: dict[str, Any] | None,
                       reply: dict[str, Any]) -> None:
        started = self._requests.pop(session, None)
        failed = reply.get("type") == "error"
        code = reply.get("code") if failed else None
        level = (logging.DEBUG if not failed else
                 logging.ERROR if code == "internal_error" else logging.WARNING)
        if not self.log.enabled(level):
            return
        request = request or {}
        op, topic, request_id = request.get("type"), request.get("topic"), request.get("id")
        self.log.emit(
            level, ERROR if failed else ACCESS, "request_failed" if failed else "request",
            **self._session(session), op=op if isinstance(op, str) else None,
            request_id=request_id if isinstance(request_id, (str, int)) else None,
            topic=topic if isinstance(topic, str) else None, code=code,
            duration_ms=None if started is None else round(
                (time.perf_counter() - started) * 1000, 3))

    async def on_auth(self, session: Session | None, principal: Principal | None,
                      error: str | None, request: web.Request | None) -> None:
        if error is None:
            return
        via = "socket" if session is not None else "http"
        if request is not None and session is None and (
                request.path == request.app[HUB].config.server.ws_path):
            via = "handshake"
        self.log.emit(logging.WARNING, ERROR, "auth_failed", code=error, via=via,
                      session=session.id if session else None,
                      remote=request.remote if request is not None else None)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return LoggingConfig


@hookimpl
def ocos_middleware(config: LoggingConfig) -> list[Middleware]:
    log = JsonLog(config)
    return [HttpAccessLog(log), SocketLog(log)]


@hookimpl
async def ocos_startup(hub: Hub) -> None:
    for socket_log in installed(hub, SocketLog):
        await socket_log.log.start()


@hookimpl
async def ocos_shutdown(hub: Hub) -> None:
    for socket_log in installed(hub, SocketLog):
        await socket_log.log.stop()
