"""Functions run in ``multiprocessing`` spawn children by the multi-process tests.

They live here rather than in a test module because a spawned child imports its target by
module name, and ``--import-mode=importlib`` test modules have none it can import.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


def take_window_slots(redis_url: str, key: str, attempts: int, start_at: float) -> int:
    """Try ``attempts`` times for a 60-per-minute slot shared through Redis; the grants won."""
    from lexigram.resilience import RateLimiter, RedisBucketBackend

    async def run() -> int:
        backend = RedisBucketBackend(redis_url)
        limiter = RateLimiter(60, 60.0, backend=backend, key=key)
        granted = 0
        for _ in range(attempts):
            granted += await limiter.try_acquire()
        await backend.close()
        return granted

    _wait_until(start_at)
    return asyncio.run(run())


def take_bucket_requests(redis_url: str, key: str, attempts: int, start_at: float) -> int:
    """Try ``attempts`` non-waiting acquires on a shared 60 rpm token bucket; the grants won."""
    from lexigram.resilience import RateLimitExceeded, RedisBucketBackend, TokenBucketLimiter

    async def run() -> int:
        backend = RedisBucketBackend(redis_url)
        limiter = TokenBucketLimiter(60, backend=backend, key=key, wait=False)
        granted = 0
        for _ in range(attempts):
            try:
                await limiter.acquire()
            except RateLimitExceeded:
                continue
            granted += 1
        await backend.close()
        return granted

    _wait_until(start_at)
    return asyncio.run(run())


def write_disk_entries(directory: str, worker: int, count: int) -> list[str]:
    """Write ``count`` entries and race for one shared ``set_if_absent`` key; the keys it won."""
    from lexigram.cache import DiskCacheBackend

    async def run() -> list[str]:
        cache = DiskCacheBackend(Path(directory))
        won: list[str] = []
        for index in range(count):
            await cache.set(f"worker{worker}:{index}", f"{worker}-{index}".encode())
            if await cache.set_if_absent(f"shared:{index}", str(worker).encode()):
                won.append(f"shared:{index}")
        await cache.close()
        return won

    return asyncio.run(run())


def _wait_until(moment: float) -> None:
    """Sleep until wall-clock ``moment`` so both children start their loops together."""
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)
