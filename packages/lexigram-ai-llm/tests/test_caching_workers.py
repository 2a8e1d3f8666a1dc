"""Code run in ``multiprocessing`` spawn children by ``test_caching_redis.py`` (no tests here).

A spawned child imports its target by module name; the test modules themselves are imported
under ``--import-mode=importlib`` names a child cannot import, this one by its plain name
(``tests/`` is on ``sys.path``, which spawn passes on to the child).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


def complete_concurrently(
    api_base: str, redis_url: str, calls: int, start_at: float, prompt: str
) -> dict[str, Any]:
    """``calls`` identical completions at once through a Redis-backed ``LLMCache``."""
    from lexigram.ai.llm import ClientConfig, LLMCache, create_llm_client
    from lexigram.cache import RedisCacheBackend

    async def run() -> dict[str, Any]:
        backend = RedisCacheBackend(redis_url)
        cache = LLMCache(backend, ttl=60)
        config = ClientConfig(
            provider="openai", model="gpt-test", api_key="sk-worker", api_base=api_base
        )
        client = create_llm_client(config, cache=cache)
        try:
            results = await asyncio.gather(
                *(client.complete([{"role": "user", "content": prompt}]) for _ in range(calls))
            )
        finally:
            await client.close()
            await backend.close()
        answers = [r.unwrap() for r in results]
        stats = cache.stats
        return {
            "contents": [a.content for a in answers],
            "cached": [a.cached for a in answers],
            "ids": [a.id for a in answers],
            "hits": stats.hits,
            "misses": stats.misses,
            "coalesced": stats.coalesced,
            "stores": stats.stores,
        }

    _wait_until(start_at)
    return asyncio.run(run())


def _wait_until(moment: float) -> None:
    """Sleep until wall-clock ``moment`` so the children start together."""
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)
