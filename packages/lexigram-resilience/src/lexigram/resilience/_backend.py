"""Where rate-limit state lives: the backend contract and the in-process backend."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class BucketRequest:
    """Take ``cost`` from the token bucket ``name`` (``capacity`` tokens, ``rate`` per second).

    ``ceiling``, when given, first lowers the bucket's level to at most that many tokens (what a
    provider says remains). A cost above the capacity waits for a full bucket and leaves a debt.
    """

    name: str
    capacity: float
    rate: float
    cost: float
    ceiling: float | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A backend's answer: whether a slot was reserved, and how long until it may be used.

    When ``granted`` is false nothing was taken and ``wait`` is how long the caller would have had
    to wait, which was more than it allowed.
    """

    granted: bool
    wait: float


@runtime_checkable
class RateLimitBackend(Protocol):
    """Atomic reserve-then-wait operations shared by every limiter using the same backend."""

    async def take_window(
        self, key: str, max_calls: int, window_seconds: float, max_wait: float | None
    ) -> Grant:
        """Reserve one call in the sliding window ``key`` if it can start within ``max_wait``."""
        ...

    async def take_buckets(
        self, key: str, buckets: Sequence[BucketRequest], max_wait: float | None
    ) -> Grant:
        """Take from every bucket of ``key`` at once if all can pay within ``max_wait``."""
        ...


class MemoryBucketBackend:
    """Rate-limit state in this process, read against ``clock`` (shared by limiters given it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take_window(
        self, key: str, max_calls: int, window_seconds: float, max_wait: float | None
    ) -> Grant:
        """Reserve one call in the sliding window ``key`` if it can start within ``max_wait``."""
        with self._lock:
            now = self._clock()
            starts = self._windows.setdefault(key, deque())
            while starts and starts[0] <= now - window_seconds:
                starts.popleft()
            start = now
            if len(starts) >= max_calls:
                start = starts[len(starts) - max_calls] + window_seconds
            wait = start - now
            if max_wait is not None and wait > max_wait:
                return Grant(False, wait)
            starts.append(start)
            return Grant(True, wait)

    async def take_buckets(
        self, key: str, buckets: Sequence[BucketRequest], max_wait: float | None
    ) -> Grant:
        """Take from every bucket of ``key`` at once if all can pay within ``max_wait``."""
        with self._lock:
            now = self._clock()
            levels: list[float] = []
            wait = 0.0
            for bucket in buckets:
                level, stamp = self._buckets.get(f"{key}:{bucket.name}", (bucket.capacity, now))
                if now > stamp:
                    level = min(bucket.capacity, level + (now - stamp) * bucket.rate)
                if bucket.ceiling is not None:
                    level = min(level, bucket.ceiling)
                levels.append(level)
                need = min(bucket.cost, bucket.capacity) - level
                if need > 0:
                    wait = max(wait, need / bucket.rate)
            granted = max_wait is None or wait <= max_wait
            for bucket, level in zip(buckets, levels, strict=True):
                paid = level - bucket.cost if granted else level
                self._buckets[f"{key}:{bucket.name}"] = (paid, now)
            return Grant(granted, wait)
