"""What a router remembers about its routes: cooldowns and live statistics.

``MemoryRouterState`` keeps them in this process; ``RedisRouterState`` shares them between
every process using the same Redis server and prefix (a cooldown is a key with a time to live,
statistics a hash updated by one script call). A router reads all of it in one call per
request; nothing is probed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["MemoryRouterState", "RedisRouterState", "RouteStats", "RouterState"]

_T = TypeVar("_T")

#: Weight of the newest sample in the latency moving average.
LATENCY_SMOOTHING = 0.3


@dataclass(frozen=True, slots=True)
class RouteStats:
    """One route as the router sees it now.

    ``latency_ms`` is a moving average over successful calls (a whole completion, or the first
    chunk of a stream); ``cooldown_remaining`` is how many seconds the route still rests and
    ``cooldown_reason`` why (``rate_limited``, ``quota``, ``authentication``, ``failure``).
    """

    name: str
    requests: int = 0
    successes: int = 0
    failures: int = 0
    latency_ms: float | None = None
    last_error: str | None = None
    cooldown_remaining: float = 0.0
    cooldown_reason: str | None = None

    @property
    def cooling_down(self) -> bool:
        """``True`` while the route rests."""
        return self.cooldown_remaining > 0


@runtime_checkable
class RouterState(Protocol):
    """Where cooldowns and statistics live."""

    async def snapshot(self, names: Sequence[str]) -> dict[str, RouteStats]:
        """Every named route's statistics and cooldown, read at once."""
        ...

    async def record(
        self, name: str, *, ok: bool, latency: float | None = None, error: str | None = None
    ) -> None:
        """Count one call of route ``name`` (``latency`` in seconds, for successes)."""
        ...

    async def cool_down(self, name: str, seconds: float, reason: str) -> None:
        """Rest route ``name`` for ``seconds``."""
        ...

    async def reset(self, name: str) -> None:
        """End route ``name``'s cooldown now."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class _Record:
    requests: int = 0
    successes: int = 0
    failures: int = 0
    latency_ms: float | None = None
    last_error: str | None = None
    cooldown_until: float = 0.0
    cooldown_reason: str | None = None


class MemoryRouterState:
    """Cooldowns and statistics in this process, timed by ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, _Record] = {}

    def _get(self, name: str) -> _Record:
        record = self._records.get(name)
        if record is None:
            record = self._records[name] = _Record()
        return record

    async def snapshot(self, names: Sequence[str]) -> dict[str, RouteStats]:
        """Every named route's statistics and cooldown."""
        now = self._clock()
        out: dict[str, RouteStats] = {}
        for name in names:
            r = self._get(name)
            remaining = max(0.0, r.cooldown_until - now)
            out[name] = RouteStats(
                name,
                r.requests,
                r.successes,
                r.failures,
                r.latency_ms,
                r.last_error,
                remaining,
                r.cooldown_reason if remaining > 0 else None,
            )
        return out

    async def record(
        self, name: str, *, ok: bool, latency: float | None = None, error: str | None = None
    ) -> None:
        """Count one call."""
        r = self._get(name)
        r.requests += 1
        if ok:
            r.successes += 1
            if latency is not None:
                sample = latency * 1000.0
                r.latency_ms = (
                    sample
                    if r.latency_ms is None
                    else r.latency_ms + LATENCY_SMOOTHING * (sample - r.latency_ms)
                )
        else:
            r.failures += 1
            r.last_error = error

    async def cool_down(self, name: str, seconds: float, reason: str) -> None:
        """Rest the route; a longer cooldown already running is kept."""
        r = self._get(name)
        until = self._clock() + seconds
        if until > r.cooldown_until:
            r.cooldown_until = until
            r.cooldown_reason = reason

    async def reset(self, name: str) -> None:
        """End the cooldown now."""
        r = self._get(name)
        r.cooldown_until = 0.0
        r.cooldown_reason = None

    async def close(self) -> None:
        """Nothing to release."""


# KEYS[1]: stats hash. ARGV: ok (1/0), latency ms ('' when none), smoothing, error code, ttl ms.
_RECORD_SCRIPT = """
local key = KEYS[1]
redis.call('HINCRBY', key, 'requests', 1)
if ARGV[1] == '1' then
  redis.call('HINCRBY', key, 'successes', 1)
  local sample = tonumber(ARGV[2])
  if sample then
    local old = tonumber(redis.call('HGET', key, 'latency_ms'))
    local new = sample
    if old then new = old + tonumber(ARGV[3]) * (sample - old) end
    redis.call('HSET', key, 'latency_ms', string.format('%.3f', new))
  end
else
  redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'last_error', ARGV[4])
end
redis.call('PEXPIRE', key, ARGV[5])
return 1
"""

# KEYS[1]: cooldown key. ARGV: reason, ms. Keeps a longer cooldown already set.
_COOL_DOWN_SCRIPT = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


class RedisRouterState:
    """Cooldowns and statistics in Redis, shared by every router with the same ``prefix``.

    A cooldown is the key ``{prefix}cooldown:{name}`` with a time to live, so every process
    sees the same remaining time; statistics are the hash ``{prefix}stats:{name}`` and expire
    after ``stats_ttl`` seconds without calls. Give a ``redis.asyncio.Redis`` client (left open
    on ``close()``) or a URL (owned; it waits at most ``socket_timeout`` seconds for a reply and
    ``socket_connect_timeout`` for a connection, so a frozen server costs the router that long;
    the router then routes as if the state were fresh and logs a warning). After a failed call
    the server is not asked again for ``failure_backoff`` seconds: calls raise
    ``ConnectionError`` at once, so each request does not wait for a dead server again.
    """

    def __init__(
        self,
        client_or_url: Redis | str,
        *,
        prefix: str = "lexigram:router:",
        stats_ttl: float = 86400.0,
        socket_timeout: float | None = 1.0,
        socket_connect_timeout: float | None = 1.0,
        failure_backoff: float = 2.0,
    ) -> None:
        if failure_backoff < 0:
            raise ValueError(f"failure_backoff must not be negative, got {failure_backoff}")
        try:
            from redis.asyncio import Redis
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            from lexigram.ai.llm.exceptions import MissingExtraError

            raise MissingExtraError(
                "Sharing router state needs redis-py: pip install 'lexigram-ai-llm[redis]'"
            ) from exc
        if isinstance(client_or_url, str):
            self._client: Redis = Redis.from_url(
                client_or_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
            )
            self._owns_client = True
        else:
            self._client = client_or_url
            self._owns_client = False
        self.prefix = prefix
        self.failure_backoff = failure_backoff
        self._down_until = 0.0  # monotonic time until which the server is not asked
        self._stats_ttl_ms = int(stats_ttl * 1000)
        self._record = self._client.register_script(_RECORD_SCRIPT)
        self._cool_down = self._client.register_script(_COOL_DOWN_SCRIPT)

    def __repr__(self) -> str:
        return f"RedisRouterState(prefix={self.prefix!r})"

    def _stats_key(self, name: str) -> str:
        return f"{self.prefix}stats:{name}"

    def _cooldown_key(self, name: str) -> str:
        return f"{self.prefix}cooldown:{name}"

    async def snapshot(self, names: Sequence[str]) -> dict[str, RouteStats]:
        """Every named route's statistics and cooldown, in one round trip."""
        self._check_up()
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(
                self._stats_key(name), "requests", "successes", "failures", "latency_ms",
                "last_error",
            )  # fmt: skip
            pipe.get(self._cooldown_key(name))
            pipe.pttl(self._cooldown_key(name))
        replies: list[Any] = await self._guarded(pipe.execute())
        out: dict[str, RouteStats] = {}
        for index, name in enumerate(names):
            fields, reason, pttl = replies[3 * index : 3 * index + 3]
            requests, successes, failures, latency, last_error = fields
            remaining = max(0.0, int(pttl) / 1000.0) if reason is not None else 0.0
            out[name] = RouteStats(
                name,
                int(requests or 0),
                int(successes or 0),
                int(failures or 0),
                float(latency) if latency is not None else None,
                _text(last_error),
                remaining,
                _text(reason) if remaining > 0 else None,
            )
        return out

    async def record(
        self, name: str, *, ok: bool, latency: float | None = None, error: str | None = None
    ) -> None:
        """Count one call (one script call)."""
        self._check_up()
        await self._guarded(
            self._record(
                keys=[self._stats_key(name)],
                args=[
                    "1" if ok else "0",
                    "" if latency is None else repr(latency * 1000.0),
                    repr(LATENCY_SMOOTHING),
                    error or "",
                    self._stats_ttl_ms,
                ],
            )
        )

    async def cool_down(self, name: str, seconds: float, reason: str) -> None:
        """Rest the route everywhere; a longer cooldown already running is kept."""
        millis = max(1, round(seconds * 1000))
        self._check_up()
        await self._guarded(self._cool_down(keys=[self._cooldown_key(name)], args=[reason, millis]))

    async def reset(self, name: str) -> None:
        """End the cooldown now, everywhere."""
        await self._client.unlink(self._cooldown_key(name))  # asked for by a person: no skip
        self._down_until = 0.0

    async def close(self) -> None:
        """Close the client if this state created it."""
        if self._owns_client:
            await asyncio.shield(self._client.aclose())

    def _check_up(self) -> None:
        left = self._down_until - time.monotonic()
        if left > 0:
            raise ConnectionError(f"router state in Redis skipped for {left:.1f}s after a failure")

    async def _guarded(self, call: Awaitable[_T]) -> _T:
        try:
            return await call
        except Exception:
            self._down_until = time.monotonic() + self.failure_backoff
            raise


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
