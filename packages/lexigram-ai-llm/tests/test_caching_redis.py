"""``LLMCache`` on a real redis-server: shared between clients and between processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, LLMCache, create_llm_client
from lexigram.cache import RedisCacheBackend

_WORKSPACE = str(Path(__file__).resolve().parents[3])
if _WORKSPACE not in sys.path:
    sys.path.insert(0, _WORKSPACE)

import test_caching_workers as workers  # noqa: E402  (by plain name: spawn children import it)

pytestmark = pytest.mark.redis

HELLO = [{"role": "user", "content": "What is shared?"}]


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


def config_for(server: OpenAIServer) -> ClientConfig:
    return ClientConfig(
        provider="openai", model="gpt-test", api_key="sk-test", api_base=server.url + "/v1"
    )


async def in_children(*calls: tuple[Any, ...]) -> list[Any]:
    """Run ``workers`` functions in spawned processes while this loop keeps serving."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(calls), mp_context=context) as pool:
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(pool, fn, *args) for fn, *args in calls]
        return list(await asyncio.wait_for(asyncio.gather(*futures), 120))


async def test_two_clients_share_entries_through_redis(
    server: OpenAIServer,
    redis_url: str,
) -> None:
    server.script(Reply(text="from redis"))
    backends = [RedisCacheBackend(redis_url), RedisCacheBackend(redis_url)]
    clients = [create_llm_client(config_for(server), cache=LLMCache(b)) for b in backends]
    try:
        first = (await clients[0].complete(HELLO)).unwrap()
        second = (await clients[1].complete(HELLO)).unwrap()
        stored = [key async for key in backends[0].client.scan_iter(match="lexigram:cache:llm:*")]
    finally:
        for client in clients:
            await client.close()
        for backend in backends:
            await backend.close()
    assert len(server.requests) == 1
    assert second.cached and second.content == first.content == "from redis"
    assert second.id == first.id
    assert len(stored) == 1 and b"sk-test" not in stored[0]


async def test_a_second_process_gets_the_first_process_answer(
    server: OpenAIServer,
    redis_url: str,
) -> None:
    server.script(Reply(text="answered once"))
    api_base = server.url + "/v1"
    (first,) = await in_children(
        (workers.complete_concurrently, api_base, redis_url, 1, 0.0, "shared question")
    )
    (second,) = await in_children(
        (workers.complete_concurrently, api_base, redis_url, 1, 0.0, "shared question")
    )
    assert len(server.requests) == 1
    assert first["contents"] == second["contents"] == ["answered once"]
    assert first["cached"] == [False] and second["cached"] == [True]
    assert second["ids"] == first["ids"]


async def test_identical_requests_over_two_processes_make_one_provider_call(
    server: OpenAIServer,
    redis_url: str,
) -> None:
    # Long enough that the second process starts while the first one's call is in flight.
    server.script(Reply(text="coalesced", delay=1.5))
    api_base = server.url + "/v1"
    start_at = time.time() + 4.0  # after both children have imported everything
    results = await in_children(
        (workers.complete_concurrently, api_base, redis_url, 10, start_at, "one call please"),
        (workers.complete_concurrently, api_base, redis_url, 10, start_at, "one call please"),
    )
    assert len(server.requests) == 1
    assert [c for r in results for c in r["contents"]] == ["coalesced"] * 20
    assert sum(r["stores"] for r in results) == 1
    # In each process 9 callers joined the process's own call; the other process's caller
    # joined through Redis (or found the stored answer if it came late).
    assert sum(r["coalesced"] + r["hits"] for r in results) >= 19
