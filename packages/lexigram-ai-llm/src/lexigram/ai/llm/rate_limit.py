"""Rate limiting: the guide's ``RateLimiter`` and the client's per-provider token buckets.

``RateLimiter`` is a plain sliding window for your own code::

    limiter = RateLimiter(max_calls=10, window_seconds=60)
    await limiter.acquire()

``ProviderRateLimiter`` is what a client applies before the network: requests-per-minute and
tokens-per-minute buckets per provider and model, in this process or shared by every process
through Redis (one atomic script call per request), lowered to what the provider's
``x-ratelimit-*`` headers report. It waits for capacity, or refuses at once with
``LLMRateLimitError``, without any network call to the provider::

    limiter = ProviderRateLimiter(RateLimit(requests_per_minute=60),
                                  backend=RedisBucketBackend("redis://localhost"))
    client = create_llm_client(config, rate_limiter=limiter)

``ClientConfig(requests_per_minute=..., tokens_per_minute=..., rate_limit_wait=...)`` builds an
in-process one for you.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lexigram.ai.llm.exceptions import LLMError, LLMRateLimitError
from lexigram.resilience import (
    MemoryBucketBackend,
    RateLimitBackend,
    RateLimiter,
    RateLimitExceeded,
    TokenBucketLimiter,
)

if TYPE_CHECKING:
    from lexigram.ai.llm.config import ClientConfig

__all__ = ["ProviderRateLimiter", "RateLimit", "RateLimiter", "TokenBucketLimiter"]

logger = logging.getLogger("lexigram.ai.llm.rate_limit")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests and tokens allowed per minute (``None``: not limited)."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    @property
    def is_limited(self) -> bool:
        """``True`` when at least one of the two limits is set."""
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


class ProviderRateLimiter:
    """Token buckets per provider and model; the client's rate-limit policy.

    ``limits`` maps ``"provider/model"`` or ``"provider"`` to a ``RateLimit`` (the most specific
    one applies); ``default`` covers the rest. With ``wait`` a call sleeps until its request and
    tokens are available (refused when that would take more than ``max_wait`` seconds); without
    it, a call that would have to wait is refused at once. A refusal is an
    ``LLMRateLimitError`` with ``code="local_rate_limit"`` and ``retry_after`` set.

    When the shared state fails (Redis down or frozen: ``RedisBucketBackend`` bounds each call
    by its ``socket_timeout``) the limiter fails *open*: the call goes ahead unlimited, a
    warning is logged, and for ``failure_backoff`` seconds the backend is not asked again (the
    provider's own limits, answered with 429 and retried, still protect the account; a cache or
    limiter outage should not become an outage of the application).
    """

    def __init__(
        self,
        default: RateLimit | None = None,
        *,
        limits: Mapping[str, RateLimit] | None = None,
        backend: Literal["memory"] | RateLimitBackend = "memory",
        wait: bool = True,
        max_wait: float = 60.0,
        key_prefix: str = "llm",
        failure_backoff: float = 2.0,
    ) -> None:
        self.default = default or RateLimit()
        self.limits = dict(limits or {})
        # One state for every bucket of this limiter, so ``key`` alone separates them.
        self.backend: RateLimitBackend = MemoryBucketBackend() if backend == "memory" else backend
        self.wait = wait
        self.max_wait = max_wait
        self.key_prefix = key_prefix
        self.failure_backoff = failure_backoff
        self._backend_down_until = 0.0
        self._limiters: dict[tuple[str, str], TokenBucketLimiter | None] = {}

    @classmethod
    def from_config(
        cls,
        config: ClientConfig,
        *,
        backend: Literal["memory"] | RateLimitBackend = "memory",
    ) -> ProviderRateLimiter | None:
        """The limiter ``config`` asks for (``requests_per_minute``, ``tokens_per_minute``,
        ``rate_limit_wait``), or ``None`` when it sets no limit."""
        limit = RateLimit(config.requests_per_minute, config.tokens_per_minute)
        if not limit.is_limited:
            return None
        return cls(
            limit, backend=backend, wait=config.rate_limit_wait, max_wait=config.max_retry_after
        )

    def __repr__(self) -> str:
        return (
            f"ProviderRateLimiter(default={self.default!r}, limits={self.limits!r}, "
            f"backend={type(self.backend).__name__}, wait={self.wait!r})"
        )

    def limit_for(self, provider: str, model: str) -> RateLimit:
        """The limit that applies to ``provider`` and ``model``."""
        return self.limits.get(f"{provider}/{model}") or self.limits.get(provider) or self.default

    def limiter_for(self, provider: str, model: str) -> TokenBucketLimiter | None:
        """The buckets of ``provider`` and ``model`` (``None`` when unlimited)."""
        slot = (provider, model)
        if slot not in self._limiters:
            limit = self.limit_for(provider, model)
            self._limiters[slot] = (
                TokenBucketLimiter(
                    limit.requests_per_minute,
                    limit.tokens_per_minute,
                    backend=self.backend,
                    key=f"{self.key_prefix}:{provider}:{model}",
                    wait=self.wait,
                    max_wait=self.max_wait,
                )
                if limit.is_limited
                else None
            )
        return self._limiters[slot]

    async def acquire(self, provider: str, model: str, tokens: int) -> LLMError | None:
        """Take one request and ``tokens`` tokens before a call: ``None`` to go ahead (after
        waiting, if need be), or the ``LLMRateLimitError`` that refuses the call."""
        limiter = self.limiter_for(provider, model)
        if limiter is None or self._backend_down_until > time.monotonic():
            return None
        try:
            await limiter.acquire(max(0, tokens))
        except RateLimitExceeded as exc:
            wait = "" if self.wait else " (waiting is off: rate_limit_wait=False)"
            return LLMRateLimitError(
                f"Local rate limit reached for {provider}/{model}; retry after "
                f"{exc.retry_after:.2f}s{wait}",
                provider=provider,
                model=model,
                code="local_rate_limit",
                retryable=True,
                retry_after=math.ceil(exc.retry_after * 1000) / 1000,
            )
        except Exception as exc:  # the limiter's store is down: let the provider's limits act
            self._backend_down_until = time.monotonic() + self.failure_backoff
            logger.warning(
                "rate limiter for %s/%s unavailable (%s: %s); calling without it for %.1fs",
                provider,
                model,
                type(exc).__name__,
                exc,
                self.failure_backoff,
            )
        return None

    def update_from_headers(self, provider: str, model: str, headers: Mapping[str, str]) -> None:
        """Lower the buckets to the provider's ``x-ratelimit-remaining-*``/``reset-*`` report."""
        limiter = self.limiter_for(provider, model)
        if limiter is not None:
            limiter.update_from_headers(headers)
