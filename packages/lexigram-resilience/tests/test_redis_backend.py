import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
from redis.asyncio import Redis

from lexigram.resilience import (
    Grant,
    RateLimiter,
    RateLimitExceeded,
    RedisBucketBackend,
    TokenBucketLimiter,
)
from tests_support import workers
from tests_support.redis_server import OwnRedisServer

pytestmark = pytest.mark.redis


async def test_window_grants_exactly_max_calls_across_limiters(redis_url: str) -> None:
    backend = RedisBucketBackend(redis_url)
    first = RateLimiter(5, 60.0, backend=backend, key="svc")
    second = RateLimiter(5, 60.0, backend=RedisBucketBackend(backend.client), key="svc")
    grants = [await first.try_acquire() for _ in range(4)] + [await second.try_acquire()]
    assert grants == [True] * 5
    assert not await first.try_acquire()
    assert not await second.try_acquire()
    assert await RateLimiter(5, 60.0, backend=backend, key="other").try_acquire()
    await backend.close()


async def test_window_reservations_queue_one_window_apart(redis_url: str) -> None:
    backend = RedisBucketBackend(redis_url)
    assert await backend.take_window("w", 1, 30.0, 0.0) == Grant(True, 0.0)
    refused = await backend.take_window("w", 1, 30.0, 0.0)
    assert not refused.granted
    assert 29.0 < refused.wait <= 30.0
    second = await backend.take_window("w", 1, 30.0, None)
    assert second.granted
    assert 29.0 < second.wait <= 30.0
    third = await backend.take_window("w", 1, 30.0, None)
    assert 59.0 < third.wait <= 60.0  # queued behind the second's reservation
    await backend.close()


async def test_keys_live_under_the_prefix_and_expire(redis_url: str) -> None:
    client: Redis = Redis.from_url(redis_url)
    backend = RedisBucketBackend(client, prefix="test:rl:")
    await RateLimiter(2, 10.0, backend=backend, key="k").try_acquire()
    await TokenBucketLimiter(60, 600, backend=backend, key="k").acquire(tokens=5)
    keys = sorted(await client.keys("*"))
    assert keys == [
        b"test:rl:bucket:{k}:requests",
        b"test:rl:bucket:{k}:tokens",
        b"test:rl:window:{k}",
    ]
    for key in keys:
        assert 0 < await client.pttl(key) <= 61_000
    await backend.close()  # a client we passed in stays open
    assert await client.ping()
    await client.aclose()


async def test_token_bucket_on_redis(redis_url: str) -> None:
    backend = RedisBucketBackend(redis_url)
    limiter = TokenBucketLimiter(60, 6000, backend=backend, key="llm", wait=False)
    for _ in range(60):
        await limiter.acquire(tokens=10)
    with pytest.raises(RateLimitExceeded) as raised:
        await limiter.acquire(tokens=10)
    assert 0.0 < raised.value.retry_after <= 1.0
    await backend.close()


async def test_token_bucket_reserves_and_reports_the_wait(redis_url: str) -> None:
    backend = RedisBucketBackend(redis_url)
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    limiter = TokenBucketLimiter(None, 600, backend=backend, key="t", sleep=record)
    assert await limiter.acquire(tokens=600) == 0.0
    waited = await limiter.acquire(tokens=50)  # 10 tokens/s
    assert 4.9 < waited <= 5.0
    assert sleeps == [waited]
    await backend.close()


async def test_headers_clamp_the_shared_bucket(redis_url: str) -> None:
    backend = RedisBucketBackend(redis_url)
    reporter = TokenBucketLimiter(60, backend=backend, key="shared", wait=False)
    reporter.update_from_headers({"x-ratelimit-remaining-requests": "2"})
    await reporter.acquire()  # applies the report, then takes one
    other_process = TokenBucketLimiter(60, backend=backend, key="shared", wait=False)
    await other_process.acquire()
    with pytest.raises(RateLimitExceeded):
        await other_process.acquire()
    await backend.close()


async def test_falls_back_to_eval_when_the_script_cache_is_empty(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    await client.script_flush()
    await client.config_resetstat()
    backend = RedisBucketBackend(client)
    limiter = RateLimiter(2, 60.0, backend=backend)
    assert await limiter.try_acquire()  # NOSCRIPT -> EVAL, which caches the script
    assert await limiter.try_acquire()  # EVALSHA finds it
    await client.script_flush()
    assert not await limiter.try_acquire()  # NOSCRIPT again -> EVAL
    stats = await client.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] == 2
    assert stats["cmdstat_evalsha"]["calls"] == 3
    await client.aclose()


def test_two_processes_share_a_sixty_per_minute_window(redis_url: str) -> None:
    start_at = time.time() + 1.0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [
            pool.submit(workers.take_window_slots, redis_url, "two-procs", 100, start_at)
            for _ in range(2)
        ]
        grants = [future.result(timeout=60) for future in futures]
    assert sum(grants) == 60, grants


def test_two_processes_share_a_sixty_rpm_token_bucket(redis_url: str) -> None:
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [
            pool.submit(workers.take_bucket_requests, redis_url, "two-procs", 100, time.time())
            for _ in range(2)
        ]
        grants = [future.result(timeout=60) for future in futures]
    refill_allowance = int(time.monotonic() - started) + 1  # one request refills per second
    assert 60 <= sum(grants) <= 60 + refill_allowance, grants


async def test_a_frozen_server_raises_a_timeout_instead_of_hanging(
    own_redis_server: OwnRedisServer,
) -> None:
    import asyncio

    from redis.exceptions import TimeoutError as RedisTimeoutError

    backend = RedisBucketBackend(own_redis_server.url, socket_timeout=0.3)
    try:
        assert (await backend.take_window("k", 5, 60.0, None)).granted
        own_redis_server.freeze()
        try:
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(backend.take_window("k", 5, 60.0, None), 10)
        finally:
            own_redis_server.thaw()
        assert (await backend.take_window("k", 5, 60.0, None)).granted
    finally:
        await backend.close()
