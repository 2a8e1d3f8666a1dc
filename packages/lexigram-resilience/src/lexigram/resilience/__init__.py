"""Retry policy, circuit breaker and rate limiting, in-process or shared through Redis."""

from lexigram.resilience._backend import (
    BucketRequest,
    Grant,
    MemoryBucketBackend,
    RateLimitBackend,
)
from lexigram.resilience._breaker import CircuitBreaker, CircuitBreakerRegistry, CircuitState
from lexigram.resilience._errors import RateLimitExceeded
from lexigram.resilience._limiters import RateLimiter, TokenBucketLimiter
from lexigram.resilience._redis import RedisBucketBackend
from lexigram.resilience._retry import RetryPolicy

__all__ = [
    "BucketRequest",
    "CircuitBreaker",
    "CircuitBreakerRegistry",
    "CircuitState",
    "Grant",
    "MemoryBucketBackend",
    "RateLimitBackend",
    "RateLimitExceeded",
    "RateLimiter",
    "RedisBucketBackend",
    "RetryPolicy",
    "TokenBucketLimiter",
]
