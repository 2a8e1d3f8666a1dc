"""Code run in ``multiprocessing`` spawn children by ``test_budget.py`` (no tests here;
imported by its plain name so that a spawned child can import it too)."""

from __future__ import annotations

import asyncio
import time


def complete_under_shared_budget(
    api_base: str, redis_url: str, calls: int, start_at: float
) -> dict[str, int]:
    """``calls`` completions under a 1,000-token budget shared through Redis; how many went
    out and how many the budget refused."""
    from lexigram.ai.llm import Budget, ClientConfig, create_llm_client
    from lexigram.ai.llm.exceptions import LLMBudgetExceededError

    async def run() -> dict[str, int]:
        budget = Budget(max_tokens=1000, scope="team-a", redis_url=redis_url)
        config = ClientConfig(
            provider="openai", model="gpt-4o-mini", api_key="sk-worker", api_base=api_base
        )
        client = create_llm_client(config, budget=budget)
        sent = refused = 0
        try:
            for _ in range(calls):
                result = await client.complete([{"role": "user", "content": "hi"}], max_tokens=100)
                if result.is_ok():
                    sent += 1
                elif isinstance(result.unwrap_err(), LLMBudgetExceededError):
                    refused += 1
        finally:
            await client.close()
            await budget.close()
        return {"sent": sent, "refused": refused}

    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    return asyncio.run(run())
