"""Errors raised by the resilience helpers."""

from __future__ import annotations


class RateLimitExceeded(Exception):
    """A rate limit would be exceeded; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message or f"rate limit exceeded; retry after {retry_after:.3f}s")
