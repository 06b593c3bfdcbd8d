"""Idempotent publishing: a repeated `key` within the window returns the first offset."""

from __future__ import annotations

import time
from collections import OrderedDict


class DedupWindow:
    """Remembers `(topic, key) -> offset` for `window` seconds, at most `max_keys` entries."""

    def __init__(self, window: float, max_keys: int) -> None:
        self.window = window
        self.max_keys = max_keys
        self._seen: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def get(self, topic: str, key: str) -> int | None:
        self._expire(time.monotonic())
        hit = self._seen.get((topic, key))
        return hit[0] if hit else None

    def remember(self, topic: str, key: str, offset: int) -> None:
        if self.window <= 0:
            return
        now = time.monotonic()
        self._seen[(topic, key)] = (offset, now + self.window)
        self._seen.move_to_end((topic, key))
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._seen:
            _, (_, expires) = next(iter(self._seen.items()))
            if expires > now:
                return
            self._seen.popitem(last=False)
