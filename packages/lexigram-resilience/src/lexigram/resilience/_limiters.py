"""Rate limiters: a strict sliding window and provider-style request/token buckets."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from lexigram.resilience._backend import BucketRequest, MemoryBucketBackend, RateLimitBackend
from lexigram.resilience._errors import RateLimitExceeded
from lexigram.resilience._headers import read_limit_headers

Sleep = Callable[[float], Awaitable[object]]


def _resolve_backend(backend: Literal["memory"] | RateLimitBackend) -> RateLimitBackend:
    if backend == "memory":
        return MemoryBucketBackend()
    if isinstance(backend, str):
        raise ValueError(f"backend must be 'memory' or a RateLimitBackend, got {backend!r}")
    return backend


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class RateLimiter:
    """At most ``max_calls`` calls in any ``window_seconds`` (a sliding-window log).

    Each call is stamped with the time its slot starts; a call finding the window full reserves
    the first slot that frees up and sleeps until then, so waiters are served in arrival order
    with no retry storm. A cancelled waiter's slot stays used. Pass a ``RedisBucketBackend`` to
    hold the limit across processes (the window is then measured on the Redis server's clock).
    """

    def __init__(
        self,
        max_calls: int,
        window_seconds: float,
        *,
        backend: Literal["memory"] | RateLimitBackend = "memory",
        key: str = "default",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, got {max_calls}")
        self.max_calls = max_calls
        self.window_seconds = _positive("window_seconds", window_seconds)
        self.key = key
        self._backend = _resolve_backend(backend)
        self._sleep = sleep

    async def acquire(self) -> float:
        """Wait for a free slot and take it; the seconds spent waiting."""
        grant = await self._backend.take_window(self.key, self.max_calls, self.window_seconds, None)
        if grant.wait > 0:
            await self._sleep(grant.wait)
        return grant.wait

    async def try_acquire(self) -> bool:
        """Take a slot if one is free right now; never waits."""
        grant = await self._backend.take_window(self.key, self.max_calls, self.window_seconds, 0.0)
        return grant.granted


class TokenBucketLimiter:
    """Requests-per-minute and tokens-per-minute buckets, as LLM providers meter them.

    Each bucket holds a minute's allowance and refills continuously. ``acquire(tokens)`` takes
    one request and ``tokens`` tokens together, reserving them and sleeping until they are paid
    for; it raises ``RateLimitExceeded`` instead when ``wait`` is false or the wait would pass
    ``max_wait``. ``update_from_headers`` lowers the buckets to what the provider reports (applied
    atomically with the next ``acquire``, so it works the same in memory and in Redis).
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        backend: Literal["memory"] | RateLimitBackend = "memory",
        key: str = "default",
        wait: bool = True,
        max_wait: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_minute is None and tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both")
        self._limits: dict[str, float] = {}
        if requests_per_minute is not None:
            self._limits["requests"] = _positive("requests_per_minute", requests_per_minute)
        if tokens_per_minute is not None:
            self._limits["tokens"] = _positive("tokens_per_minute", tokens_per_minute)
        if max_wait < 0:
            raise ValueError(f"max_wait must not be negative, got {max_wait}")
        self.key = key
        self.wait = wait
        self.max_wait = max_wait
        self._backend = _resolve_backend(backend)
        self._sleep = sleep
        self._clock = clock
        self._reported: dict[str, tuple[float, float]] = {}

    @property
    def requests_per_minute(self) -> float | None:
        """The request limit, if any."""
        return self._limits.get("requests")

    @property
    def tokens_per_minute(self) -> float | None:
        """The token limit, if any."""
        return self._limits.get("tokens")

    async def acquire(self, tokens: int = 0) -> float:
        """Take one request and ``tokens`` tokens; the seconds waited.

        Raises ``RateLimitExceeded`` (nothing taken) when waiting is off or would pass
        ``max_wait``.
        """
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, got {tokens}")
        now = self._clock()
        reports = dict(self._reported)
        buckets = [
            BucketRequest(
                name=name,
                capacity=per_minute,
                rate=per_minute / 60.0,
                cost=1.0 if name == "requests" else float(tokens),
                ceiling=self._ceiling(name, per_minute / 60.0, now),
            )
            for name, per_minute in self._limits.items()
        ]
        grant = await self._backend.take_buckets(
            self.key, buckets, self.max_wait if self.wait else 0.0
        )
        for name, report in reports.items():
            if self._reported.get(name) is report:
                del self._reported[name]
        if not grant.granted:
            raise RateLimitExceeded(retry_after=grant.wait)
        if grant.wait > 0:
            await self._sleep(grant.wait)
        return grant.wait

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Adopt the provider's ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` values.

        The bucket is lowered to the reported remaining count, and far enough that it is not
        full before the reported reset; it is never raised.
        """
        now = self._clock()
        for name, per_minute in self._limits.items():
            remaining, reset = read_limit_headers(headers, name)
            limits = [] if remaining is None else [remaining]
            if reset is not None:
                limits.append(per_minute - per_minute / 60.0 * reset)
            if not limits:
                continue
            reported = min(limits)
            previous = self._ceiling(name, per_minute / 60.0, now)
            if previous is not None:
                reported = min(reported, previous)
            self._reported[name] = (reported, now)

    def _ceiling(self, name: str, rate: float, now: float) -> float | None:
        """The last reported level for bucket ``name``, refilled for the time since the report."""
        report = self._reported.get(name)
        if report is None:
            return None
        level, reported_at = report
        return level + rate * max(0.0, now - reported_at)
