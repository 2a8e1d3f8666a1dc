"""Retry policy: how many attempts, and how long to wait between them."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins, up to a cap.

    Pure arithmetic: the caller decides whether an error is retryable and does the sleeping.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("base_delay, max_delay and max_retry_after must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")

    def delay_for(
        self, attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        With ``retry_after`` the wait is exactly ``min(retry_after, max_retry_after)``; otherwise it
        is drawn uniformly from ``[0, min(max_delay, base_delay * multiplier ** (attempt - 1))]``.
        A NaN ``retry_after`` is ignored (``asyncio.sleep(nan)`` would never return).
        """
        if retry_after is not None and not math.isnan(retry_after):
            return min(max(retry_after, 0.0), self.max_retry_after)
        return (rng or random).uniform(0.0, self.backoff_ceiling(attempt))

    def backoff_ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered wait after attempt number ``attempt``."""
        exponent = max(attempt - 1, 0)
        try:
            growth = self.multiplier**exponent
        except OverflowError:
            return self.max_delay
        return min(self.max_delay, self.base_delay * growth)

    def should_retry(self, attempt: int, retryable: bool) -> bool:
        """``True`` when attempt number ``attempt`` failed retryably and attempts remain."""
        return retryable and attempt < self.max_attempts
