"""The cache backend contract: bytes in, bytes out, keys under a caller-chosen prefix."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CacheBackendProtocol(Protocol):
    """An async key-value store for serialised values with optional time-to-live."""

    async def get(self, key: str) -> bytes | None:
        """The stored value, or ``None`` when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when something was removed."""
        ...

    async def exists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value."""
        ...

    async def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix`` (all of this backend's keys when empty)."""
        ...
