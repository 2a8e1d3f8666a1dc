"""Rate-limit state in Redis, shared by every process that uses the same server and prefix."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lexigram.resilience._backend import BucketRequest, Grant

if TYPE_CHECKING:
    from redis.asyncio import Redis

_INSTALL_HINT = "RedisBucketBackend needs redis-py: pip install lexigram-resilience[redis]"

# Both scripts read the clock with TIME so that processes on different hosts agree on "now".
# Scores and stamps are microseconds (exact in a Lua double until the year 2255).
_WINDOW_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_calls = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local start = now
if count >= max_calls then
  local oldest = redis.call('ZRANGE', KEYS[1], count - max_calls, count - max_calls, 'WITHSCORES')
  start = tonumber(oldest[2]) + window
end
local wait = start - now
if max_wait >= 0 and wait > max_wait then
  return {0, string.format('%d', wait)}
end
redis.call('ZADD', KEYS[1], string.format('%d', start), ARGV[4])
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((wait + window) / 1000) + 1))
return {1, string.format('%d', wait)}
"""

_BUCKET_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[1])
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local capacity = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2])
  local cost = tonumber(ARGV[base + 3])
  local ceiling = tonumber(ARGV[base + 4])
  local state = redis.call('HMGET', key, 'level', 'stamp')
  local level = tonumber(state[1]) or capacity
  local stamp = tonumber(state[2]) or now
  if now > stamp then
    level = math.min(capacity, level + (now - stamp) * rate / 1000000)
  end
  if ceiling ~= nil and ceiling < level then level = ceiling end
  levels[i] = level
  local need = math.min(cost, capacity) - level
  if need > 0 then wait = math.max(wait, need / rate * 1000000) end
end
local granted = max_wait < 0 or wait <= max_wait
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 4
  local capacity = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2])
  local level = levels[i]
  if granted then level = level - tonumber(ARGV[base + 3]) end
  redis.call('HSET', key, 'level', string.format('%.6f', level), 'stamp', string.format('%d', now))
  local ttl = math.ceil((capacity - level) / rate * 1000) + 1000
  redis.call('PEXPIRE', key, string.format('%d', ttl))
end
return {granted and 1 or 0, string.format('%d', math.ceil(wait))}
"""


class RedisBucketBackend:
    """Sliding windows and token buckets kept in Redis; each take is one atomic script call.

    Give it a ``redis.asyncio.Redis`` client (left open on ``close()``) or a URL (the backend
    owns that client). A client built from a URL waits at most ``socket_timeout`` seconds for a
    reply and ``socket_connect_timeout`` for a connection (``None``: no bound; URL parameters
    take precedence), so a frozen server raises ``redis.exceptions.TimeoutError`` that soon
    instead of stalling every caller. Keys are ``prefix`` + ``window:{key}`` or
    ``bucket:{key}:<name>``; the braces keep a limiter's keys in one Redis Cluster slot.
    """

    def __init__(
        self,
        redis_client_or_url: Redis | str,
        prefix: str = "lexigram:ratelimit:",
        *,
        socket_timeout: float | None = 1.0,
        socket_connect_timeout: float | None = 1.0,
    ) -> None:
        try:
            from redis.asyncio import Redis
            from redis.exceptions import NoScriptError
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        self._no_script_error = NoScriptError
        if isinstance(redis_client_or_url, str):
            self._client: Redis = Redis.from_url(
                redis_client_or_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
            )
            self._owns_client = True
        else:
            self._client = redis_client_or_url
            self._owns_client = False
        self.prefix = prefix

    @property
    def client(self) -> Redis:
        """The underlying ``redis.asyncio.Redis`` client."""
        return self._client

    async def take_window(
        self, key: str, max_calls: int, window_seconds: float, max_wait: float | None
    ) -> Grant:
        """Reserve one call in the sliding window ``key`` if it can start within ``max_wait``."""
        args = (
            max_calls,
            _micros(window_seconds),
            -1 if max_wait is None else _micros(max_wait),
            uuid.uuid4().hex,
        )
        granted, wait = await self._run(_WINDOW_SCRIPT, [f"{self.prefix}window:{{{key}}}"], args)
        return Grant(bool(int(granted)), int(wait) / 1_000_000)

    async def take_buckets(
        self, key: str, buckets: Sequence[BucketRequest], max_wait: float | None
    ) -> Grant:
        """Take from every bucket of ``key`` at once if all can pay within ``max_wait``."""
        keys = [f"{self.prefix}bucket:{{{key}}}:{bucket.name}" for bucket in buckets]
        args: list[str | int | float] = [-1 if max_wait is None else _micros(max_wait)]
        for bucket in buckets:
            ceiling = "" if bucket.ceiling is None else repr(float(bucket.ceiling))
            args += [repr(bucket.capacity), repr(bucket.rate), repr(bucket.cost), ceiling]
        granted, wait = await self._run(_BUCKET_SCRIPT, keys, args)
        return Grant(bool(int(granted)), int(wait) / 1_000_000)

    async def close(self) -> None:
        """Close the client if this backend created it from a URL."""
        if self._owns_client:
            await self._client.aclose()

    async def _run(
        self, script: str, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> list[Any]:
        sha = _SHAS[script]
        try:
            reply = await self._client.evalsha(sha, len(keys), *keys, *args)
        except self._no_script_error:
            reply = await self._client.eval(script, len(keys), *keys, *args)
        return list(reply)


def _micros(seconds: float) -> int:
    return math.ceil(seconds * 1_000_000)


_SHAS = {
    script: hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
    for script in (_WINDOW_SCRIPT, _BUCKET_SCRIPT)
}
