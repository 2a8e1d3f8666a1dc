"""Cache scope: two clients of the same provider and model on different hosts (or, when asked,
with different API keys) sharing one cache never serve each other's answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, LLMCache, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient, cache_scope_for
from lexigram.ai.llm.routing import LLMRouter, Route
from lexigram.cache import DiskCacheBackend, MemoryCacheBackend, RedisCacheBackend
from lexigram.contracts.cache import CacheBackendProtocol

HELLO = [{"role": "user", "content": "Which host answers?"}]


@pytest.fixture
async def servers() -> AsyncIterator[tuple[OpenAIServer, OpenAIServer]]:
    first, second = OpenAIServer(), OpenAIServer()
    await first.start()
    await second.start()
    first.script(Reply(text="answer from host A"))
    second.script(Reply(text="answer from host B"))
    yield first, second
    await first.stop()
    await second.stop()


@pytest.fixture(params=["memory", "disk", "redis"])
async def backends(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[CacheBackendProtocol, CacheBackendProtocol]]:
    """Two handles on one shared store (two Redis connections or two SQLite connections act
    like two processes; the memory backend is one object)."""
    made: list[Any] = []
    if request.param == "memory":
        shared = MemoryCacheBackend()
        made = [shared, shared]
    elif request.param == "disk":
        made = [DiskCacheBackend(tmp_path), DiskCacheBackend(tmp_path)]
    else:
        request.applymarker(pytest.mark.redis)
        url = request.getfixturevalue("redis_url")
        made = [RedisCacheBackend(url), RedisCacheBackend(url)]
    yield made[0], made[1]
    for backend in {id(b): b for b in made}.values():
        await backend.close()


def client(server: OpenAIServer, backend: CacheBackendProtocol, **extra: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-test",
        "api_key": "sk-shared-key",
        "api_base": server.url + "/v1",
        "max_retries": 0,
        **extra,
    }
    return create_llm_client(ClientConfig(**values), cache=LLMCache(backend))


async def test_clients_on_different_hosts_never_share_answers(
    servers: tuple[OpenAIServer, OpenAIServer],
    backends: tuple[CacheBackendProtocol, CacheBackendProtocol],
) -> None:
    host_a, host_b = servers
    a, b = client(host_a, backends[0]), client(host_b, backends[1])
    try:
        first_a = (await a.complete(HELLO)).unwrap()
        first_b = (await b.complete(HELLO)).unwrap()
        streamed_b = await b.stream_chat(HELLO).completion()
        again_a = (await a.complete(HELLO)).unwrap()
    finally:
        await a.close()
        await b.close()
    assert a.cache_scope != b.cache_scope
    assert first_a.content == "answer from host A" and not first_a.cached
    assert first_b.content == "answer from host B" and not first_b.cached
    assert len(host_b.requests) == 1  # host B was asked, not served host A's answer
    # Each host's own entry still serves its own client.
    assert streamed_b.unwrap().content == "answer from host B"
    assert again_a.cached and again_a.content == "answer from host A"
    assert len(host_a.requests) == 1 and len(host_b.requests) == 1


async def test_same_host_shares_answers_unless_scoped_by_key(
    servers: tuple[OpenAIServer, OpenAIServer],
) -> None:
    host, _ = servers
    shared = MemoryCacheBackend()
    # Default: the scope is provider + host, so two keys on one host share entries.
    one = client(host, shared, api_key="sk-tenant-one")
    two = client(host, shared, api_key="sk-tenant-two")
    # With cache_per_api_key each key gets its own entries.
    three = client(host, shared, api_key="sk-tenant-three", cache_per_api_key=True)
    four = client(host, shared, api_key="sk-tenant-four", cache_per_api_key=True)
    again = client(host, shared, api_key="sk-tenant-four", cache_per_api_key=True)
    try:
        assert not (await one.complete(HELLO)).unwrap().cached
        assert (await two.complete(HELLO)).unwrap().cached
        assert not (await three.complete(HELLO)).unwrap().cached
        assert not (await four.complete(HELLO)).unwrap().cached
        assert (await again.complete(HELLO)).unwrap().cached
    finally:
        for c in (one, two, three, four, again):
            await c.close()
    assert len(host.requests) == 3
    assert one.cache_scope == two.cache_scope
    assert three.cache_scope != four.cache_scope == again.cache_scope
    for c, key in ((three, "sk-tenant-three"), (four, "sk-tenant-four")):
        assert key not in c.cache_scope and "tenant" not in c.cache_scope


def test_the_scope_holds_no_credential_and_ignores_spelling() -> None:
    config = ClientConfig(
        provider="openai",
        model="gpt-test",
        api_key="sk-secret-key-value",
        api_base="http://alice:pa55word@127.0.0.1:8080/v1?token=q-secret",
        cache_per_api_key=True,
    )
    scope = create_llm_client(config).cache_scope
    for secret in ("alice", "pa55word", "q-secret", "sk-secret-key-value"):
        assert secret not in scope
    assert scope.startswith("openai@http://127.0.0.1:8080/v1?")
    # The same endpoint written differently is the same scope; a different one is not.
    assert cache_scope_for("openai", "HTTPS://API.Example.com:443/v1/") == cache_scope_for(
        "openai", "https://api.example.com/v1"
    )
    assert cache_scope_for("openai", "http://127.0.0.1:8080/v1") != cache_scope_for(
        "openai", "http://127.0.0.1:8081/v1"
    )


async def test_routers_over_different_hosts_never_share_answers(
    servers: tuple[OpenAIServer, OpenAIServer],
) -> None:
    host_a, host_b = servers
    shared = LLMCache(MemoryCacheBackend())

    def router(server: OpenAIServer) -> LLMRouter:
        route_client = create_llm_client(
            ClientConfig(
                provider="openai",
                model="gpt-test",
                api_key="sk-k",
                api_base=server.url + "/v1",
                max_retries=0,
            )
        )
        return LLMRouter([Route("main", route_client, model="gpt-test")], cache=shared)

    a, b = router(host_a), router(host_b)
    try:
        first = (await a.complete(HELLO)).unwrap()
        second = (await b.complete(HELLO)).unwrap()
    finally:
        for r in (a, b):
            for route in r.routes:
                await route.client.close()
    assert first.content == "answer from host A"
    assert second.content == "answer from host B" and not second.cached
    assert len(host_b.requests) == 1
