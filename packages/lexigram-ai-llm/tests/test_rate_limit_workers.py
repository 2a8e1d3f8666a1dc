"""Code run in ``multiprocessing`` spawn children by ``test_rate_limit_redis.py`` (no tests
here; imported by its plain name so that a spawned child can import it too)."""

from __future__ import annotations

import asyncio
import time


def complete_under_shared_limit(
    api_base: str, redis_url: str, calls: int, start_at: float
) -> dict[str, int]:
    """``calls`` completions under a 60-per-minute limit shared through Redis, refusing
    rather than waiting; how many went out and how many were refused locally."""
    from lexigram.ai.llm import ClientConfig, create_llm_client
    from lexigram.ai.llm.exceptions import LLMRateLimitError
    from lexigram.ai.llm.rate_limit import ProviderRateLimiter
    from lexigram.resilience import RedisBucketBackend

    async def run() -> dict[str, int]:
        buckets = RedisBucketBackend(redis_url)
        config = ClientConfig(
            provider="openai",
            model="gpt-test",
            api_key="sk-worker",
            api_base=api_base,
            requests_per_minute=60,
            rate_limit_wait=False,
        )
        limiter = ProviderRateLimiter.from_config(config, backend=buckets)
        client = create_llm_client(config, rate_limiter=limiter)
        sent = refused = 0
        try:
            for _ in range(calls):
                result = await client.complete([{"role": "user", "content": "hi"}])
                if result.is_ok():
                    sent += 1
                elif isinstance(result.unwrap_err(), LLMRateLimitError):
                    assert result.unwrap_err().code == "local_rate_limit"
                    refused += 1
        finally:
            await client.close()
            await buckets.close()
        return {"sent": sent, "refused": refused}

    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    return asyncio.run(run())
