"""Small pieces shared by the cache backends."""

from __future__ import annotations

import math
from types import TracebackType
from typing import Self


class AsyncClosing:
    """``async with backend:`` closes the backend on the way out."""

    async def close(self) -> None:
        """Release what the backend holds."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def check_claim_ttl(ttl: float | None) -> None:
    """Reject a claim (``set_if_absent``, a lock) that would expire the moment it was made."""
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be positive or None, got {ttl}")


def ttl_millis(ttl: float) -> int:
    """A positive time-to-live in whole milliseconds, rounded up."""
    return max(1, math.ceil(ttl * 1000))
