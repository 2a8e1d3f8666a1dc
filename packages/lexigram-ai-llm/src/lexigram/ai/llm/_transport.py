"""One pooled ``aiohttp`` session per client, created lazily on the running loop.

Imported on the first request, not with the package, so ``import lexigram.ai.llm`` stays fast.
A client reused from a new event loop (a second ``asyncio.run``) gets a fresh session; the one
bound to the dead loop is dropped.
"""

from __future__ import annotations

import asyncio

import aiohttp

__all__ = ["Transport", "aiohttp"]


class Transport:
    """Owns the HTTP session and its timeouts for one client."""

    __slots__ = ("_loop", "_max_connections", "_session", "stream_timeout", "timeout")

    #: What a failed connection raises; callers catch it without importing ``aiohttp``
    #: (an import statement on every call costs about a microsecond).
    ClientError = aiohttp.ClientError

    def __init__(self, *, timeout: float, idle_timeout: float, max_connections: int) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        # A stream may last long; what must not last is silence between chunks.
        self.stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout, sock_read=idle_timeout
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        """The session bound to the running loop, created on first use."""
        session = self._session
        loop = asyncio.get_running_loop()
        if session is not None and self._loop is loop and not session.closed:
            return session
        if session is not None and not session.closed:
            # Bound to a loop that is gone: its connections cannot be closed from here.
            session.detach()
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ttl_dns_cache=300, enable_cleanup_closed=False
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, trust_env=False
        )
        self._loop = loop
        return self._session

    async def close(self) -> None:
        """Close the session if it belongs to the running loop."""
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - close() is always awaited
            running = None
        if running is self._loop:
            await session.close()
        else:
            session.detach()
