"""What the middleware plugins share: finding their objects on a hub, and JSON-lines output
written from a thread so that no event-loop tick ever waits for a disk."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ocos_hub.middleware import Middleware

if TYPE_CHECKING:
    from ocos_hub.hub import Hub

M = TypeVar("M", bound=Middleware)

_STOP = object()


def installed(hub: Hub, kind: type[M]) -> list[M]:
    """This plugin's middleware objects on `hub` (hooks get the hub only at startup)."""
    return [mw for mw in hub.middleware if isinstance(mw, kind)]


def dumps(record: dict[str, Any]) -> str:
    """One compact JSON line (no newline); non-JSON values become strings, never a crash."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)


class LineWriter:
    """Writes records as lines to a file (`target` a path) or to `stderr` / `stdout`.

    `put` only enqueues; a daemon thread renders and writes whatever is queued, then
    flushes once per batch. `close` drains the queue. Records put after `close` (a late
    disconnect during shutdown) are written synchronously so that none is lost.
    """

    def __init__(self, target: str, *, fsync: bool = False,
                 render: Callable[[dict[str, Any]], str] = dumps) -> None:
        self.target = target
        self.fsync = fsync
        self.render = render
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stream: IO[str] | None = None
        self._lock = threading.Lock()  # orders the thread's writes and late synchronous ones

    @property
    def is_file(self) -> bool:
        return self.target not in ("stderr", "stdout")

    def _open(self) -> IO[str]:
        if self.target == "stderr":
            return sys.stderr
        if self.target == "stdout":
            return sys.stdout
        return open(self.target, "a", encoding="utf-8")  # closed in close()

    def start(self) -> None:
        """Open the target and start the writer thread (blocking: call it off the loop)."""
        self._stream = self._open()
        self._thread = threading.Thread(target=self._run, name=f"ocos-lines:{self.target}",
                                        daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any]) -> None:
        if self._thread is not None:
            self._queue.put(record)
        else:
            self._write([record])

    def close(self) -> None:
        """Write everything queued, then stop the thread and close the file."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
        with self._lock:
            stream, self._stream = self._stream, None
            if stream is not None and self.is_file:
                stream.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[dict[str, Any]] = []
            stop = item is _STOP
            if not stop:
                batch.append(item)  # type: ignore[arg-type]
            while not stop:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            if batch:
                self._write(batch)
            if stop:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            stream = self._stream
            opened = stream is None
            if stream is None:
                stream = self._open()
            try:
                stream.write("".join(self.render(record) + "\n" for record in batch))
                stream.flush()
                if self.fsync and self.is_file:
                    os.fsync(stream.fileno())
            finally:
                if opened and self.is_file:
                    stream.close()
