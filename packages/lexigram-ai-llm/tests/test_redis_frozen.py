"""A frozen redis-server (SIGSTOP: connections open, nothing answers) behind the cache, the
rate limiter or the router state: calls still succeed from the provider, soon (each Redis
command the library's clients send is bounded by ``socket_timeout``), with a warning logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, LLMCache, create_llm_client
from lexigram.ai.llm.rate_limit import ProviderRateLimiter, RateLimit
from lexigram.ai.llm.routing import LLMRouter, RedisRouterState, Route
from lexigram.cache import RedisCacheBackend
from lexigram.resilience import RedisBucketBackend
from tests_support.redis_server import OwnRedisServer

pytestmark = pytest.mark.redis

HELLO = [{"role": "user", "content": "Is Redis there?"}]
# Far above the 1 s default socket timeout, far below the 5 s (or unbounded) wait of a client
# without one: this bounds a hang, it does not measure speed.
BOUND = 4.5


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    srv.script(Reply(text="from the provider"))
    yield srv
    await srv.stop()


def config_for(server: OpenAIServer) -> ClientConfig:
    return ClientConfig(
        provider="openai",
        model="gpt-test",
        api_key="sk-test",
        api_base=server.url + "/v1",
        max_retries=0,
    )


async def bounded(call: Any) -> Any:
    return await asyncio.wait_for(call, BOUND)


async def test_frozen_cache_backend_degrades_to_the_provider(
    server: OpenAIServer, own_redis_server: OwnRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisCacheBackend(own_redis_server.url)
    cache = LLMCache(backend, failure_backoff=0.5)
    client = create_llm_client(config_for(server), cache=cache)
    try:
        assert not (await client.complete(HELLO)).unwrap().cached  # connections now pooled
        own_redis_server.freeze()
        with caplog.at_level(logging.WARNING, logger="lexigram.ai.llm.cache"):
            frozen = await bounded(client.complete(HELLO))
            streamed = await bounded(client.stream_chat(HELLO).completion())
        own_redis_server.thaw()
        await asyncio.sleep(0.6)  # past failure_backoff: the cache is tried again
        again = await bounded(client.complete(HELLO))
    finally:
        own_redis_server.thaw()
        await client.close()
        await backend.close()
    assert frozen.unwrap().content == "from the provider" and not frozen.unwrap().cached
    assert streamed.unwrap().content == "from the provider"
    assert "cache backend get failed (TimeoutError" in caplog.text
    assert cache.stats.errors >= 1
    assert again.unwrap().cached  # the entry stored before the freeze is served again
    assert len(server.requests) == 3


async def test_frozen_rate_limit_backend_fails_open(
    server: OpenAIServer, own_redis_server: OwnRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    buckets = RedisBucketBackend(own_redis_server.url)
    limiter = ProviderRateLimiter(RateLimit(requests_per_minute=600), backend=buckets)
    client = create_llm_client(config_for(server), rate_limiter=limiter)
    try:
        assert (await client.complete(HELLO)).is_ok()
        own_redis_server.freeze()
        with caplog.at_level(logging.WARNING, logger="lexigram.ai.llm.rate_limit"):
            results = [await bounded(client.complete(HELLO)) for _ in range(3)]
    finally:
        own_redis_server.thaw()
        await client.close()
        await buckets.close()
    assert all(r.unwrap().content == "from the provider" for r in results)
    assert "rate limiter for openai/gpt-test unavailable (TimeoutError" in caplog.text


async def test_frozen_router_state_routes_as_if_fresh(
    server: OpenAIServer, own_redis_server: OwnRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    state = RedisRouterState(own_redis_server.url)
    route_client = create_llm_client(config_for(server))
    router = LLMRouter([Route("main", route_client, model="gpt-test")], state=state)
    try:
        assert (await router.complete(HELLO)).is_ok()
        own_redis_server.freeze()
        with caplog.at_level(logging.WARNING, logger="lexigram.ai.llm"):
            result = await asyncio.wait_for(router.complete(HELLO), 2 * BOUND)
            # Within failure_backoff the frozen server is not asked again: no second wait.
            again = await asyncio.wait_for(router.complete(HELLO), BOUND)
    finally:
        own_redis_server.thaw()
        await route_client.close()
        await state.close()
    assert result.unwrap().content == "from the provider"
    assert again.unwrap().content == "from the provider"
    assert "router state unavailable (TimeoutError" in caplog.text
    assert "(ConnectionError: router state in Redis skipped for" in caplog.text
