"""The `replay` extension: where the memory broker keeps history, and for how long.

`[plugins.replay] store = "memory"` keeps the core's bounded ring per topic (sized by this
section or by `[history]`); its epoch changes at every start, so clients resuming after a
restart get `recovered: false`. `store = "sqlite"` keeps history in a SQLite file whose
epoch and offsets survive restarts: a client resuming with `since` after the hub came back
gets exactly what it missed and `recovered: true`.

The SQLite store runs every statement on one worker thread with one connection (WAL
journal), so the event loop never waits on the disk and offsets are assigned by a single
writer, one transaction per publish. One hub process owns a file. Each event is kept as
its `event` frame, encoded once when stored (the router then sends those bytes), never
again when replayed.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from json import loads
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ocos_hub import Event, HistoryPage, HistoryStore, Position, hookimpl
from ocos_hub.broker import Draft, MemoryHistory
from ocos_hub.config import ConfigError, HubConfig
from ocos_hub.protocol import now_rfc3339

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, last_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    topic TEXT NOT NULL,
    offset INTEGER NOT NULL,
    stored_at REAL NOT NULL,
    kind TEXT NOT NULL,
    ts TEXT NOT NULL,
    frame BLOB NOT NULL,
    PRIMARY KEY (topic, offset)
) WITHOUT ROWID;
"""
SCHEMA_VERSION = "1"


class StoredEvent(Event):
    """An event read back from the file, with the frame it was stored as. Its `data` is
    parsed from that frame only when something reads it (a filter, a visibility check, the
    history op); an unfiltered replay sends the stored bytes and never parses them."""

    __slots__ = ("_data",)

    def __init__(self, topic: str, kind: str, offset: int, ts: str, frame: bytes) -> None:
        super().__init__(topic, kind, offset, ts, {}, frame)
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            frame = self.frame
            size = frame[1] & 0x7F  # RFC 6455 5.2: a 7, 16 or 64-bit payload length
            self._data = loads(frame[2 if size < 126 else 4 if size == 126 else 10:])["data"]
        return self._data

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data = value


class ReplayConfig(BaseModel):
    """`[plugins.replay]`: the history store of the memory broker and its retention."""

    model_config = ConfigDict(extra="forbid")

    store: Literal["memory", "sqlite"] = Field(
        "memory", description="`memory`: a ring per topic, lost at restart (new epoch). "
        "`sqlite`: a file that survives restarts, so clients recover across them.")
    path: str | None = Field(
        None, validate_default=True, description="The SQLite file (`store = \"sqlite\"`); "
        "created when missing, its directory must exist.")
    max_events: int | None = Field(
        None, ge=1, description="Events retained per topic; default `[history] max_events`.")
    max_age: float | None = Field(
        None, gt=0, description="Seconds an event is retained; default `[history] max_age`.")
    synchronous: Literal["normal", "full"] = Field(
        "normal", description="SQLite `synchronous`: `normal` survives a crash of the hub "
        "but may lose the last publishes on power loss; `full` survives that too and "
        "costs a disk flush per publish.")

    @field_validator("path")
    @classmethod
    def _sqlite_needs_path(cls, path: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("store") == "sqlite" and not path:
            raise ValueError("`store = \"sqlite\"` needs the SQLite file's path")
        return path


class SqliteHistory(HistoryStore):
    """History in a SQLite file, trimmed by count and age per topic. The epoch is kept in
    the file, so offsets continue and `since` recovers across restarts.

    Reads see only events whose append has returned to the event loop (and so have been
    handed to the router): a subscriber reading history meanwhile gets each event once,
    either from the read or live, never from both.
    """

    def __init__(self, path: str | Path, max_events: int = 10_000, max_age: float = 3600.0,
                 synchronous: str = "normal", clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.max_events = max_events
        self.max_age = max_age
        self.synchronous = synchronous
        self.clock = clock  # wall clock: stored ages must mean the same after a restart
        self.epoch = ""
        self._visible: dict[str, int] = {}  # latest offset per topic handed to the loop
        self._db: sqlite3.Connection | None = None  # used on the worker thread only
        self._worker: ThreadPoolExecutor | None = None

    async def _run(self, job: Callable[..., T], *args: Any) -> T:
        if self._worker is None:
            raise RuntimeError("the SQLite history store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._worker, job, *args)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocos-history")
        try:
            self.epoch, self._visible = await self._run(self._open)
        except sqlite3.Error as exc:
            await self.close()
            raise ConfigError(f"[plugins.replay] path: cannot use {str(self.path)!r} as a "
                              f"SQLite history store: {exc}") from exc

    def _open(self) -> tuple[str, dict[str, int]]:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        db.executescript(SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version is not None and version[0] != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version[0]}, this hub reads "
                                            f"{SCHEMA_VERSION}")
            row = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            epoch = row[0] if row else secrets.token_hex(8)
            db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                           [("schema", SCHEMA_VERSION), ("epoch", epoch)])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return epoch, dict(db.execute("SELECT topic, last_offset FROM topics").fetchall())

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(worker, self._close)
        worker.shutdown(wait=True)  # the worker is idle: this returns at once

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()  # the last connection checkpoints the WAL into the file

    # -- writing ------------------------------------------------------------------------

    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        events = await self._run(self._append, list(drafts))
        for event in events:
            self._visible[event.topic] = event.offset
        return events

    def _append(self, drafts: list[Draft]) -> list[Event]:
        db = self.db
        now = self.clock()
        ts = now_rfc3339()
        db.execute("BEGIN IMMEDIATE")
        try:
            last: dict[str, int] = {}
            events = []
            rows = []
            for topic, kind, data in drafts:
                offset = last.get(topic)
                if offset is None:
                    row = db.execute("SELECT last_offset FROM topics WHERE topic = ?",
                                     (topic,)).fetchone()
                    offset = row[0] if row else 0
                offset += 1
                last[topic] = offset
                event = Event(topic, kind, offset, ts, data)
                events.append(event)
                rows.append((topic, offset, now, kind, ts, event.frame))
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO topics VALUES (?, ?) ON CONFLICT (topic) "
                           "DO UPDATE SET last_offset = excluded.last_offset",
                           list(last.items()))
            for topic, offset in last.items():
                db.execute("DELETE FROM events WHERE topic = ? AND offset <= ?",
                           (topic, offset - self.max_events))
                self._trim_age(topic, now)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return events

    def _trim_age(self, topic: str, now: float) -> None:
        """Drop the topic's oldest events older than `max_age`; a prefix, so the retained
        range stays contiguous. Costs one index lookup when nothing is due."""
        db = self.db
        horizon = now - self.max_age
        oldest = db.execute("SELECT stored_at FROM events WHERE topic = ? ORDER BY offset "
                            "LIMIT 1", (topic,)).fetchone()
        if oldest is None or oldest[0] >= horizon:
            return
        keep = db.execute("SELECT offset FROM events WHERE topic = ? AND stored_at >= ? "
                          "ORDER BY offset LIMIT 1", (topic, horizon)).fetchone()
        if keep is None:
            db.execute("DELETE FROM events WHERE topic = ?", (topic,))
        else:
            db.execute("DELETE FROM events WHERE topic = ? AND offset < ?", (topic, keep[0]))

    # -- reading ------------------------------------------------------------------------

    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        return await self._run(self._read, topic, self._visible.get(topic, 0),
                               "offset > ? ORDER BY offset", after, limit)

    async def read_last(self, topic: str, count: int) -> HistoryPage:
        visible = self._visible.get(topic, 0)
        return await self._run(self._read, topic, visible, "offset <= ? ORDER BY offset DESC",
                               visible, count)

    async def read_before(self, topic: str, before: int, limit: int) -> HistoryPage:
        return await self._run(self._read, topic, self._visible.get(topic, 0),
                               "offset < ? ORDER BY offset DESC", before, limit)

    def _read(self, topic: str, visible: int, where: str, bound: int, limit: int,
              ) -> HistoryPage:
        db = self.db
        self._trim_age(topic, self.clock())  # autocommit: a statement is its own transaction
        rows = db.execute(
            "SELECT offset, kind, ts, frame FROM events WHERE topic = ? AND offset <= ? "
            f"AND {where} LIMIT ?", (topic, visible, bound, max(0, limit))).fetchall()
        if "DESC" in where:
            rows.reverse()
        first = db.execute("SELECT offset FROM events WHERE topic = ? ORDER BY offset LIMIT 1",
                           (topic,)).fetchone()
        first_offset = min(first[0], visible + 1) if first else visible + 1
        events: list[Event] = [StoredEvent(topic, kind, offset, ts, frame)
                               for offset, kind, ts, frame in rows]
        return HistoryPage(events, self.epoch, first_offset, visible)

    async def position(self, topic: str) -> Position:
        return Position(self._visible.get(topic, 0), self.epoch)


def make_store(config: ReplayConfig, hub_config: HubConfig) -> HistoryStore | None:
    """The store `config` asks for; None leaves the core's default memory ring."""
    max_events = config.max_events or hub_config.history.max_events
    max_age = config.max_age or hub_config.history.max_age
    if config.store == "sqlite":
        assert config.path is not None  # the config model requires it
        return SqliteHistory(config.path, max_events, max_age, config.synchronous)
    if config.max_events is None and config.max_age is None:
        return None
    return MemoryHistory(max_events, max_age)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return ReplayConfig


@hookimpl
def ocos_history_store(config: ReplayConfig, hub_config: HubConfig) -> HistoryStore | None:
    return make_store(config, hub_config)
