"""An in-process LRU cache bounded by entry count and by the memory its entries take."""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lexigram.cache._common import AsyncClosing, check_claim_ttl

# What an entry costs besides its key and value objects, on 64-bit CPython: its slot in the
# OrderedDict's table and ordering list (with the table kept at most 2/3 full), the
# ``(value, expires_at)`` tuple and the expiry float: 120-152 bytes measured with tracemalloc
# (more just after the table grows), rounded up so that ``max_bytes`` is a true bound.
_ENTRY_OVERHEAD = 160


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the backend was created, and its current size.

    ``total_bytes`` is the memory the entries take: keys, values and bookkeeping, not only
    the values' lengths.
    """

    hits: int
    misses: int
    evictions: int
    entries: int
    total_bytes: int


class MemoryCacheBackend(AsyncClosing):
    """LRU with per-key time-to-live, holding at most ``max_entries`` entries taking at most
    ``max_bytes`` of memory.

    An entry's size is what it really takes (``entry_size``): the key and value objects and the
    table's bookkeeping, so ``stats.total_bytes`` agrees with the process's memory growth.
    Values are stored as exact-size copies: a ``bytes`` object may own a larger buffer than its
    length (``orjson.dumps`` returns ~4 KiB buffers for a few hundred bytes), which a cache
    keeping the caller's object would hold without counting it. The
    least recently used entries are evicted to make room; an entry larger than ``max_bytes``
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

    @staticmethod
    def entry_size(key: str, value: bytes) -> int:
        """The bytes of memory an entry for ``key`` and ``value`` takes in this cache."""
        return sys.getsizeof(key) + sys.getsizeof(value) + _ENTRY_OVERHEAD

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
            self._store(key, _exact_copy(value), ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` holds no live value; ``True`` when stored."""
        check_claim_ttl(ttl)
        with self._lock:
            if self._live(key) is not None:
                return False
            return self._store(key, _exact_copy(value), ttl)

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
        size = self.entry_size(key, value)
        if (ttl is not None and ttl <= 0) or size > self.max_bytes:
            return False
        expires_at = None if ttl is None else self._clock() + ttl
        self._entries[key] = (value, expires_at)
        self._bytes += size
        now = self._clock()
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            evicted_key, (evicted, evicted_expiry) = self._entries.popitem(last=False)
            self._bytes -= self.entry_size(evicted_key, evicted)
            self._evictions += evicted_expiry is None or evicted_expiry > now
        return True

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= self.entry_size(key, entry[0])


def _exact_copy(value: bytes) -> bytes:
    """A new ``bytes`` owning exactly ``len(value)`` bytes (``bytes(b)`` would return ``b``)."""
    return bytes(memoryview(value))
