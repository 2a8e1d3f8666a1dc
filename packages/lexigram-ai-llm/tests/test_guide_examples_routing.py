"""GUIDE.txt's "Multi-provider routing" example and its "Enable caching" best practice, run as
written against the OpenAI loopback server, with configuration from the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram import Application
from lexigram.contracts.ai import LLMClientProtocol
from lexigram.contracts.cache import CacheBackendProtocol
from lexigram.di import Container, DynamicModule, Module, Provider


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def environment(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``ai_llm`` section from the environment, as a deployment would set it."""
    monkeypatch.setenv("LEX_AI_LLM__PROVIDER", "openai")
    monkeypatch.setenv("LEX_AI_LLM__MODEL", "gpt-4o")
    monkeypatch.setenv("LEX_AI_LLM__API_BASE", server.url + "/v1")
    monkeypatch.setenv("LEX_AI_LLM__API_KEY", "sk-from-the-environment")


@pytest.mark.usefixtures("environment")
async def test_multi_provider_routing(server: OpenAIServer) -> None:
    server.script(Reply(text="routed"))
    # --- from the guide, as written ---
    from lexigram.ai.llm import LLMModule
    from lexigram.ai.llm.routing import LLMConfig

    module = LLMModule.configure(routing=LLMConfig())
    # --- end of the guide's example ---
    async with Application.boot(modules=[module]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        from lexigram.ai.llm.routing import LLMRouter

        assert isinstance(llm, LLMRouter)
        completion = (await llm.complete([{"role": "user", "content": "Route me"}])).unwrap()
        streamed = await llm.stream_chat([{"role": "user", "content": "Stream me"}]).text()
    assert completion.content == "routed" == streamed.unwrap()
    assert completion.provider == "openai"
    assert [(a["provider"], a["outcome"]) for a in completion.attempts] == [("openai", "ok")]
    assert [r.json["model"] for r in server.requests] == ["gpt-4o", "gpt-4o"]
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-the-environment"


class InMemoryCacheProvider(Provider):
    """ "Provide a CacheBackendProtocol": a module registering one of lexigram-cache's."""

    async def register(self, container: Container) -> None:
        from lexigram.cache import MemoryCacheBackend

        container.register_instance(CacheBackendProtocol, MemoryCacheBackend())


class CacheModule(Module):
    pass


@pytest.mark.usefixtures("environment")
async def test_enable_caching_for_repeated_queries(server: OpenAIServer) -> None:
    from lexigram.ai.llm import ClientConfig, LLMModule

    # --- the guide: "set enable_cache=True in ClientConfig and provide a CacheBackendProtocol"
    config = ClientConfig(enable_cache=True)
    modules = [
        DynamicModule(module=CacheModule, providers=(InMemoryCacheProvider(),)),
        LLMModule.configure(config),
    ]
    # ---
    async with Application.boot(modules=modules) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        answers = [
            await llm.complete([{"role": "user", "content": "Same question"}]) for _ in range(3)
        ]
        backend = await app.container.resolve(CacheBackendProtocol)
    assert len(server.requests) == 1
    assert [a.unwrap().cached for a in answers] == [False, True, True]
    from lexigram.cache import MemoryCacheBackend

    assert isinstance(backend, MemoryCacheBackend) and backend.stats.entries == 1  # it was used


@pytest.mark.usefixtures("environment")
async def test_enable_caching_with_routing(server: OpenAIServer) -> None:
    from lexigram.ai.llm import ClientConfig, LLMModule
    from lexigram.ai.llm.routing import LLMConfig

    module = LLMModule.configure(ClientConfig(enable_cache=True), routing=LLMConfig())
    async with Application.boot(modules=[module]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        for _ in range(2):
            await llm.complete([{"role": "user", "content": "Route and cache"}])
    assert len(server.requests) == 1
