import asyncio

import pytest

from lexigram.resilience import MemoryBucketBackend, RateLimiter
from tests_support.clock import FakeClock


def make_limiter(clock: FakeClock, max_calls: int = 3, window: float = 10.0) -> RateLimiter:
    return RateLimiter(
        max_calls, window, backend=MemoryBucketBackend(clock=clock), sleep=clock.sleep
    )


async def test_try_acquire_grants_at_most_max_calls_per_window(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    assert [await limiter.try_acquire() for _ in range(5)] == [True, True, True, False, False]
    clock.advance(9.99)
    assert not await limiter.try_acquire()
    clock.advance(0.01)
    assert [await limiter.try_acquire() for _ in range(4)] == [True, True, True, False]


async def test_window_slides_rather_than_resetting(clock: FakeClock) -> None:
    limiter = make_limiter(clock, max_calls=2, window=10.0)
    assert await limiter.try_acquire()  # t=0
    clock.advance(6.0)
    assert await limiter.try_acquire()  # t=6
    clock.advance(4.0)
    assert await limiter.try_acquire()  # t=10: the t=0 call has left the window
    assert not await limiter.try_acquire()
    clock.advance(5.9)
    assert not await limiter.try_acquire()  # t=15.9: the t=6 call is still in it
    clock.advance(0.1)
    assert await limiter.try_acquire()


async def test_acquire_waits_for_the_first_free_slot(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    assert [await limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []
    clock.advance(4.0)
    assert await limiter.acquire() == pytest.approx(6.0)
    assert clock.sleeps == [pytest.approx(6.0)]


async def test_concurrent_waiters_are_spaced_one_window_per_batch(clock: FakeClock) -> None:
    backend = MemoryBucketBackend(clock=clock)
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)  # the clock stands still: every waiter computes from t=0

    limiter = RateLimiter(2, 10.0, backend=backend, sleep=record)
    waits = await asyncio.gather(*(limiter.acquire() for _ in range(7)))
    assert sorted(waits) == [0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0]
    assert sorted(sleeps) == [10.0, 10.0, 20.0, 20.0, 30.0]


async def test_limiters_sharing_a_backend_and_key_share_the_limit(clock: FakeClock) -> None:
    backend = MemoryBucketBackend(clock=clock)
    first = RateLimiter(2, 10.0, backend=backend, key="openai")
    second = RateLimiter(2, 10.0, backend=backend, key="openai")
    other = RateLimiter(2, 10.0, backend=backend, key="anthropic")
    assert await first.try_acquire()
    assert await second.try_acquire()
    assert not await first.try_acquire()
    assert await other.try_acquire()


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_calls"):
        RateLimiter(0, 1.0)
    with pytest.raises(ValueError, match="window_seconds"):
        RateLimiter(1, 0.0)
    with pytest.raises(ValueError, match="backend"):
        RateLimiter(1, 1.0, backend="redis")  # type: ignore[arg-type]
