"""A cache in Redis (redis-py asyncio), every key under one prefix."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast

from lexigram.cache._common import AsyncClosing, check_claim_ttl, ttl_millis

if TYPE_CHECKING:
    from redis.asyncio import Redis

_INSTALL_HINT = "RedisCacheBackend needs redis-py: pip install lexigram-cache[redis]"
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_SCAN_BATCH = 500
_LOCK_NAMESPACE = "__lock__:"

# Delete the lock only if it still holds our token: it may have expired and been taken since.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_RELEASE_SHA = hashlib.sha1(_RELEASE_SCRIPT.encode(), usedforsecurity=False).hexdigest()


class LockTimeoutError(TimeoutError):
    """``RedisCacheBackend.lock`` could not take the lock within its ``max_wait``."""


class RedisCacheBackend(AsyncClosing):
    """Values stored at ``prefix + key``; time-to-live set with ``PX``.

    Give it a ``redis.asyncio.Redis`` client (left open by ``close()``; it must not decode
    responses) or a URL (the backend owns that client). A client built from a URL waits at most
    ``socket_timeout`` seconds for a reply and ``socket_connect_timeout`` for a connection
    (``None``: no bound), so a frozen server costs a caller that long, not redis-py's 5 s
    default or forever; such a call raises ``redis.exceptions.TimeoutError``, which
    ``LLMCache`` logs and treats as a miss. URL parameters (``?socket_timeout=2``) take
    precedence. ``clear(prefix)`` walks only this backend's keys with ``SCAN`` and removes them
    with ``UNLINK``.
    """

    def __init__(
        self,
        client_or_url: Redis | str,
        *,
        prefix: str = "lexigram:cache:",
        socket_timeout: float | None = 1.0,
        socket_connect_timeout: float | None = 1.0,
    ) -> None:
        try:
            from redis.asyncio import Redis
            from redis.exceptions import NoScriptError
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        self._no_script_error = NoScriptError
        if isinstance(client_or_url, str):
            self._client: Redis = Redis.from_url(
                client_or_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
            )
            self._owns_client = True
        else:
            if client_or_url.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError("RedisCacheBackend stores bytes: use decode_responses=False")
            self._client = client_or_url
            self._owns_client = False
        self.prefix = prefix

    @property
    def client(self) -> Redis:
        """The underlying ``redis.asyncio.Redis`` client, for what this class does not cover."""
        return self._client

    async def get(self, key: str) -> bytes | None:
        """The stored value, or ``None`` when absent or expired."""
        return cast("bytes | None", await self._client.get(self.prefix + key))

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given (at once when ``<= 0``)."""
        if ttl is not None and ttl <= 0:
            await self._client.unlink(self.prefix + key)
            return
        await self._client.set(
            self.prefix + key, value, px=None if ttl is None else ttl_millis(ttl)
        )

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` holds no value (``SET NX``); ``True`` when stored."""
        check_claim_ttl(ttl)
        stored = await self._client.set(
            self.prefix + key, value, nx=True, px=None if ttl is None else ttl_millis(ttl)
        )
        return bool(stored)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when something was removed."""
        removed: int = await self._client.unlink(self.prefix + key)
        return removed > 0

    async def exists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value."""
        found: int = await self._client.exists(self.prefix + key)
        return found > 0

    async def clear(self, prefix: str = "") -> int:
        """Remove every key of this backend starting with ``prefix``; the number removed."""
        full_prefix = (self.prefix + prefix).encode()
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.prefix + prefix) + "*"
        removed = 0
        batch: list[bytes] = []
        async for key in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
            if key.startswith(full_prefix):  # belt and braces: never touch a foreign key
                batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                removed += await self._client.unlink(*batch)
                batch.clear()
        if batch:
            removed += await self._client.unlink(*batch)
        return removed

    @asynccontextmanager
    async def lock(
        self, key: str, ttl: float, *, max_wait: float | None = None
    ) -> AsyncIterator[None]:
        """Hold a cross-process lock on ``key`` for the body, or at most ``ttl`` seconds.

        Waits for a held lock (polling, up to ``max_wait`` seconds when given, then raises
        ``LockTimeoutError``). The release deletes the lock only if this holder still owns it.
        """
        check_claim_ttl(ttl)
        name = f"{self.prefix}{_LOCK_NAMESPACE}{key}"
        token = secrets.token_hex(16)
        loop = asyncio.get_running_loop()
        deadline = None if max_wait is None else loop.time() + max_wait
        pause = 0.005
        while not await self._client.set(name, token, nx=True, px=ttl_millis(ttl)):
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise LockTimeoutError(f"lock {key!r} still held after {max_wait}s")
                pause = min(pause, remaining)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        try:
            yield
        finally:
            await asyncio.shield(self._release(name, token))

    async def close(self) -> None:
        """Close the client if this backend created it from a URL."""
        if self._owns_client:
            await self._client.aclose()

    async def _release(self, name: str, token: str) -> None:
        try:
            await self._client.evalsha(_RELEASE_SHA, 1, name, token)
        except self._no_script_error:
            await self._client.eval(_RELEASE_SCRIPT, 1, name, token)
