"""Single-flight claims on a real redis-server: a leader cancelled at any point, the claim
included, leaves no ``:claim`` key behind, so an identical request elsewhere never waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, LLMCache, create_llm_client
from lexigram.cache import RedisCacheBackend

pytestmark = pytest.mark.redis


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    srv.script(Reply(text="the answer"))
    yield srv
    await srv.stop()


def config_for(server: OpenAIServer) -> ClientConfig:
    return ClientConfig(
        provider="openai", model="gpt-test", api_key="sk-test", api_base=server.url + "/v1"
    )


def question(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {n}"}]


async def test_cancelled_leaders_leave_no_claim_behind(
    server: OpenAIServer, redis_url: str
) -> None:
    backend = RedisCacheBackend(redis_url)
    client = create_llm_client(config_for(server), cache=LLMCache(backend))
    cancels = 0
    try:
        # Cancel after 0, 1, 2, ... turns of the event loop: some cancels land while the
        # ``SET NX`` of the claim is on its way or its reply is being read.
        for n in range(400):
            task = asyncio.ensure_future(client.complete(question(n)))
            for _ in range(n % 40):
                await asyncio.sleep(0)
            if not task.done():
                task.cancel()
                cancels += 1
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.05)  # let shielded releases finish
        claims = [key async for key in backend.client.scan_iter(match="*:claim")]
    finally:
        await client.close()
        await backend.close()
    assert cancels > 300
    assert claims == []

    # Another process (its own connection and cache) asking the same questions does not wait
    # for a claim nobody holds: each is answered by the provider at once.
    other_backend = RedisCacheBackend(redis_url)
    other_cache = LLMCache(other_backend, wait_timeout=60)
    other = create_llm_client(config_for(server), cache=other_cache)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(other.complete(question(n)) for n in range(0, 400, 7))), 30
        )
    finally:
        await other.close()
        await other_backend.close()
    assert all(result.unwrap().content == "the answer" for result in results)
    assert other_cache.stats.coalesced == 0
