"""An in-process LRU cache bounded by entry count and total bytes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lexigram.cache._common import AsyncClosing, check_claim_ttl


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the backend was created, and its current size."""

    hits: int
    misses: int
    evictions: int
    entries: int
    total_bytes: int


class MemoryCacheBackend(AsyncClosing):
    """LRU with per-key time-to-live, holding at most ``max_entries`` and ``max_bytes`` of values.

    The least recently used entries are evicted to make room; a value larger than ``max_bytes``
    is not stored. Expired entries are dropped when next touched or evicted.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 2**20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    @property
    def stats(self) -> CacheStats:
        """A snapshot of hits, misses, evictions and size."""
        with self._lock:
            return CacheStats(
                self._hits, self._misses, self._evictions, len(self._entries), self._bytes
            )

    async def get(self, key: str) -> bytes | None:
        """The stored value, or ``None`` when absent or expired."""
        with self._lock:
            value = self._live(key)
            if value is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given (at once when ``<= 0``)."""
        with self._lock:
            self._store(key, bytes(value), ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` holds no live value; ``True`` when stored."""
        check_claim_ttl(ttl)
        with self._lock:
            if self._live(key) is not None:
                return False
            return self._store(key, bytes(value), ttl)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when a live value was removed."""
        with self._lock:
            live = self._live(key) is not None
            self._remove(key)
            return live

    async def exists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value."""
        with self._lock:
            return self._live(key) is not None

    async def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix``; the number of live values removed."""
        with self._lock:
            now = self._clock()
            removed = 0
            for key in [key for key in self._entries if key.startswith(prefix)]:
                expires_at = self._entries[key][1]
                removed += expires_at is None or expires_at > now
                self._remove(key)
            return removed

    async def close(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _live(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= self._clock():
            self._remove(key)
            return None
        return value

    def _store(self, key: str, value: bytes, ttl: float | None) -> bool:
        self._remove(key)
        if (ttl is not None and ttl <= 0) or len(value) > self.max_bytes:
            return False
        expires_at = None if ttl is None else self._clock() + ttl
        self._entries[key] = (value, expires_at)
        self._bytes += len(value)
        now = self._clock()
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (evicted, evicted_expiry) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)
            self._evictions += evicted_expiry is None or evicted_expiry > now
        return True

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0])
