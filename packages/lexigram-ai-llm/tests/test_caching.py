"""``LLMCache`` through the client, in one process: keys, storage, streams, single flight."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram import Application
from lexigram.ai.llm import ClientConfig, LLMCache, LLMModule, StubLLMClient, create_llm_client
from lexigram.ai.llm.caching import request_cache_key
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import ProviderError
from lexigram.ai.llm.types import (
    ChatMessage,
    ChatRequest,
    Completion,
    ImageDataPart,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolDefinition,
)
from lexigram.cache import MemoryCacheBackend, RedisCacheBackend
from lexigram.contracts.ai import LLMClientProtocol
from lexigram.contracts.ai.thinking import ThinkingConfig
from lexigram.contracts.cache import CacheBackendProtocol
from lexigram.di import Container, Provider
from lexigram.result import Err

KEY = "sk-cache-SECRET-0123456789"
HELLO = [{"role": "user", "content": "Capital of France?"}]


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


def client_for(server: OpenAIServer, **overrides: Any) -> AbstractLLMClient:
    policies = {k: overrides.pop(k) for k in ("cache", "rate_limiter") if k in overrides}
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-test",
        "api_base": server.url + "/v1",
        "api_key": SecretStr(KEY),
        "retry_base_delay": 0.001,
        "retry_max_delay": 0.002,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values), **policies)


def request(**changes: Any) -> ChatRequest:
    values: dict[str, Any] = {
        "messages": (ChatMessage.user("hi"),),
        "model": "gpt-test",
        "temperature": 0.5,
    }
    values.update(changes)
    return ChatRequest(**values)


# -- the key -------------------------------------------------------------------------------


def test_key_is_versioned_sha256() -> None:
    key = request_cache_key(request(), "openai")
    prefix, version, digest = key.split(":")
    assert (prefix, version) == ("llm", "v1")
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_key_is_pinned() -> None:
    # The canonical form is a storage format: changing it must bump CACHE_KEY_VERSION.
    assert request_cache_key(request(), "openai") == (
        "llm:v1:0a6b481e3ffa37cea577b2fcf88760a82e2dd575deb5eb771c1b33dde96a2a4f"
    )


def test_key_is_the_same_in_another_process_with_another_hash_seed() -> None:
    tools = (ToolDefinition.from_schema("f", {"type": "object", "properties": {"b": {}, "a": {}}}),)
    here = request_cache_key(request(tools=tools, extra={"z": 1, "a": {"y": 2, "x": 1}}), "openai")
    code = (
        "from lexigram.ai.llm.caching import request_cache_key\n"
        "from lexigram.ai.llm.types import ChatMessage, ChatRequest, ToolDefinition\n"
        "tools = (ToolDefinition.from_schema('f', "
        "{'type': 'object', 'properties': {'a': {}, 'b': {}}}),)\n"
        "print(request_cache_key(ChatRequest(messages=(ChatMessage.user('hi'),), "
        "model='gpt-test', temperature=0.5, tools=tools, "
        "extra={'a': {'x': 1, 'y': 2}, 'z': 1}), 'openai'))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    assert there == here  # dict order and hash seed do not matter


def test_dict_and_object_messages_give_the_same_key() -> None:
    from lexigram.ai.llm.types import normalize_messages

    as_dicts = normalize_messages(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    )
    as_objects = (ChatMessage.system("s"), ChatMessage.user("u"))
    assert request_cache_key(request(messages=as_dicts), "p") == request_cache_key(
        request(messages=as_objects), "p"
    )


def test_integral_floats_and_ints_give_the_same_key() -> None:
    assert request_cache_key(request(temperature=1), "p") == request_cache_key(
        request(temperature=1.0), "p"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other-model"},
        {"temperature": 0.6},
        {"max_tokens": 10},
        {"top_p": 0.9},
        {"stop": ("END",)},
        {"seed": 7},
        {"tools": (ToolDefinition("lookup", "find things"),)},
        {"tool_choice": "required"},
        {"response_format": ResponseFormat("json_object")},
        {"response_format": ResponseFormat.json_schema({"type": "object"})},
        {"thinking": ThinkingConfig(budget_tokens=2000)},
        {"extra": {"presence_penalty": 0.5}},
        {"messages": (ChatMessage.user("hi!"),)},
        {"messages": (ChatMessage.user([TextPart("hi"), ImageDataPart(b"\x89PNG")]),)},
        {
            "messages": (
                ChatMessage.user("hi"),
                ChatMessage.assistant("", tool_calls=[ToolCall.create("c1", "f", {"x": 1})]),
                ChatMessage.tool("42", tool_call_id="c1"),
            )
        },
    ],
)
def test_everything_that_shapes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    assert request_cache_key(request(**change), "openai") != request_cache_key(request(), "openai")


def test_provider_is_part_of_the_key() -> None:
    assert request_cache_key(request(), "openai") != request_cache_key(request(), "groq")


def test_image_bytes_are_part_of_the_key() -> None:
    one = request(messages=(ChatMessage.user([ImageDataPart(b"one")]),))
    two = request(messages=(ChatMessage.user([ImageDataPart(b"two")]),))
    assert request_cache_key(one, "p") != request_cache_key(two, "p")


def test_credentials_in_options_never_enter_the_key() -> None:
    plain = request(extra={"user": "u1"})
    with_key = request(extra={"user": "u1", "api_key": KEY, "headers": {"Authorization": KEY}})
    with_other_key = request(
        extra={"user": "u1", "api_key": "sk-other", "headers": {"Authorization": "Bearer x"}}
    )
    with_secret = request(extra={"user": "u1", "token_holder": SecretStr(KEY)})
    with_other_secret = request(extra={"user": "u1", "token_holder": SecretStr("nope")})
    assert request_cache_key(with_key, "p") == request_cache_key(with_other_key, "p")
    assert request_cache_key(with_secret, "p") == request_cache_key(with_other_secret, "p")
    assert request_cache_key(with_key, "p") != request_cache_key(plain, "p")  # headers differ


async def test_clients_with_different_keys_share_entries_and_the_key_is_not_stored(
    server: OpenAIServer,
) -> None:
    backend = MemoryCacheBackend()
    cache = LLMCache(backend)
    first = client_for(server, cache=cache)
    second = client_for(server, cache=cache, api_key=SecretStr("sk-another-key-987654"))
    try:
        assert (await first.complete(HELLO)).is_ok()
        hit = (await second.complete(HELLO)).unwrap()
        assert hit.cached
        assert len(server.requests) == 1
        stored = [await backend.get(k) for k in list(backend._entries)]
        assert stored and all(KEY.encode() not in (value or b"") for value in stored)
        assert all(KEY not in key for key in backend._entries)
    finally:
        await first.close()
        await second.close()


# -- storing and serving -------------------------------------------------------------------


async def test_enable_cache_without_di_uses_memory_and_counts(server: OpenAIServer) -> None:
    server.script(Reply(text="Paris.", thinking="France's capital", tool_calls=[]))
    client = client_for(server, enable_cache=True, cache_ttl=60)
    try:
        assert isinstance(client.cache, LLMCache)
        assert isinstance(client.cache.backend, MemoryCacheBackend)
        first = (await client.complete(HELLO)).unwrap()
        second = (await client.complete(HELLO)).unwrap()
    finally:
        await client.close()
    assert len(server.requests) == 1
    assert not first.cached and second.cached
    assert second.content == first.content == "Paris."
    assert second.thinking == first.thinking and second.usage == first.usage
    stats = client.cache.stats
    assert (stats.hits, stats.misses, stats.stores) == (1, 1, 1)
    assert stats.hit_rate == 0.5


async def test_entry_is_a_serialised_completion(server: OpenAIServer) -> None:
    server.script(
        Reply(
            text="", tool_calls=[("call_1", "get_weather", {"city": "Paris"})], finish="tool_calls"
        )
    )
    backend = MemoryCacheBackend()
    client = client_for(server, cache=LLMCache(backend, ttl=30))
    try:
        answer = (await client.complete(HELLO, tools=[ToolDefinition("get_weather")])).unwrap()
    finally:
        await client.close()
    (key,) = list(backend._entries)
    raw = await backend.get(key)
    assert raw is not None
    data = orjson.loads(raw)  # plain JSON, no pickled Python objects
    assert data["version"] == "v1"
    assert Completion.from_dict(data["completion"]) == answer
    assert answer.tool_calls[0].parsed_arguments() == {"city": "Paris"}


async def test_per_call_opt_out(server: OpenAIServer) -> None:
    client = client_for(server, enable_cache=True)
    try:
        await client.complete(HELLO)
        fresh = (await client.complete(HELLO, cache=False)).unwrap()
    finally:
        await client.close()
    assert not fresh.cached
    assert len(server.requests) == 2


async def test_errors_are_not_cached(server: OpenAIServer) -> None:
    server.script(Reply(error="invalid_request"), Reply(text="fine"))
    client = client_for(server, enable_cache=True)
    try:
        assert isinstance(await client.complete(HELLO), Err)
        assert (await client.complete(HELLO)).unwrap().content == "fine"
        assert (await client.complete(HELLO)).unwrap().cached
    finally:
        await client.close()
    assert len(server.requests) == 2


async def test_entries_expire_after_ttl(server: OpenAIServer) -> None:
    now = [1000.0]
    backend = MemoryCacheBackend(clock=lambda: now[0])
    client = client_for(server, cache=LLMCache(backend, ttl=10))
    try:
        await client.complete(HELLO)
        now[0] += 9
        assert (await client.complete(HELLO)).unwrap().cached
        now[0] += 2
        assert not (await client.complete(HELLO)).unwrap().cached
    finally:
        await client.close()
    assert len(server.requests) == 2


async def test_hit_replays_as_a_stream_that_folds_to_the_same_completion(
    server: OpenAIServer,
) -> None:
    server.script(
        Reply(
            text="Paris it is.",
            thinking="easy",
            tool_calls=[("c1", "f", {"a": 1})],
            finish="tool_calls",
        )
    )
    client = client_for(server, enable_cache=True)
    try:
        answer = (await client.complete(HELLO)).unwrap()
        stream = client.stream_chat(HELLO)
        chunks = (await stream.collect()).unwrap()
        replayed = (await client.stream_chat(HELLO).completion()).unwrap()
    finally:
        await client.close()
    assert len(server.requests) == 1
    assert "".join(c.delta for c in chunks) == "Paris it is."
    assert replayed.content == answer.content
    assert replayed.tool_calls == answer.tool_calls
    assert replayed.thinking is not None and answer.thinking is not None
    assert replayed.thinking.content == answer.thinking.content
    assert replayed.usage == answer.usage and replayed.finish_reason == "tool_calls"


async def test_a_streamed_miss_is_stored_for_complete(server: OpenAIServer) -> None:
    server.script(Reply(text="streamed once", chunk_chars=3))
    client = client_for(server, enable_cache=True)
    try:
        streamed = (await client.stream_chat(HELLO).text()).unwrap()
        again = (await client.complete(HELLO)).unwrap()
    finally:
        await client.close()
    assert streamed == again.content == "streamed once"
    assert again.cached
    assert len(server.requests) == 1


async def test_uncacheable_options_bypass_the_cache() -> None:
    # A custom provider may take options with no JSON form; such calls are never cached.
    stub = StubLLMClient(["one", "two"], config=ClientConfig(provider="stub", enable_cache=True))
    handle = object()
    first = (await stub.complete(HELLO, on_token=handle)).unwrap()
    second = (await stub.complete(HELLO, on_token=handle)).unwrap()
    assert (first.content, second.content) == ("one", "two")
    assert isinstance(stub.cache, LLMCache) and stub.cache.stats.bypassed == 2


def test_dates_in_options_have_a_canonical_form() -> None:
    import datetime

    when = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert request_cache_key(request(extra={"at": when}), "p") == request_cache_key(
        request(extra={"at": when}), "p"
    )
    later = when + datetime.timedelta(seconds=1)
    assert request_cache_key(request(extra={"at": when}), "p") != request_cache_key(
        request(extra={"at": later}), "p"
    )


# -- single flight -------------------------------------------------------------------------


async def test_concurrent_identical_requests_make_one_provider_call(server: OpenAIServer) -> None:
    server.script(Reply(text="shared", delay=0.3))
    client = client_for(server, enable_cache=True)
    try:
        results = await asyncio.gather(*(client.complete(HELLO) for _ in range(20)))
    finally:
        await client.close()
    assert len(server.requests) == 1
    assert [r.unwrap().content for r in results] == ["shared"] * 20
    assert isinstance(client.cache, LLMCache)
    assert client.cache.stats.coalesced == 19


async def test_different_requests_are_not_coalesced(server: OpenAIServer) -> None:
    server.script(Reply(text="x", delay=0.1))
    client = client_for(server, enable_cache=True)
    try:
        await asyncio.gather(
            *(client.complete([{"role": "user", "content": f"q{i}"}]) for i in range(5))
        )
    finally:
        await client.close()
    assert len(server.requests) == 5


async def test_joined_callers_share_the_leaders_error(server: OpenAIServer) -> None:
    server.script(Reply(error="server", delay=0.2))
    client = client_for(server, enable_cache=True, max_retries=0)
    try:
        results = await asyncio.gather(*(client.complete(HELLO) for _ in range(4)))
    finally:
        await client.close()
    assert len(server.requests) == 1
    assert all(isinstance(r, Err) and isinstance(r.error, ProviderError) for r in results)


async def test_cancelling_one_caller_leaves_the_shared_call_to_the_others(
    server: OpenAIServer,
) -> None:
    server.script(Reply(text="still here", delay=0.3))
    client = client_for(server, enable_cache=True)
    try:
        tasks = [asyncio.create_task(client.complete(HELLO)) for _ in range(3)]
        await asyncio.sleep(0.1)
        tasks[0].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await client.close()
    assert isinstance(results[0], asyncio.CancelledError)
    assert [r.unwrap().content for r in results[1:]] == ["still here"] * 2  # type: ignore[union-attr]
    assert len(server.requests) == 1


class CountingServer(OpenAIServer):
    """Tracks the transport of every request, to tell which connections are still open."""

    def __init__(self) -> None:
        super().__init__()
        self.transports: list[Any] = []

    async def handle(self, request: Any) -> Any:
        self.transports.append(request.transport)
        return await super().handle(request)

    @property
    def open_connections(self) -> int:
        return sum(1 for t in self.transports if t is not None and not t.is_closing())


async def test_cancelling_every_caller_cancels_the_provider_call() -> None:
    server = CountingServer()
    await server.start()
    server.script(Reply(text="nobody waits", delay=5.0))
    client = client_for(server, enable_cache=True)  # type: ignore[arg-type]
    try:
        tasks = [asyncio.create_task(client.complete(HELLO)) for _ in range(2)]
        for _ in range(500):
            if server.requests:
                break
            await asyncio.sleep(0.01)
        assert server.open_connections == 1
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        leftover = [
            t
            for t in asyncio.all_tasks()
            if t is not asyncio.current_task() and "_lead" in repr(t.get_coro())
        ]
        assert not leftover
        for _ in range(100):
            if server.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open_connections == 0
    finally:
        await client.close()
        await server.stop()


async def test_a_broken_backend_degrades_to_calling_the_provider(server: OpenAIServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    backend = RedisCacheBackend(f"redis://127.0.0.1:{dead_port}/0")
    cache = LLMCache(backend)  # failure_backoff=2.0: the backend is skipped after a failure
    retrying = LLMCache(backend, failure_backoff=0)  # asks the backend on every call
    client = client_for(server, cache=cache)
    other = client_for(server, cache=retrying)
    try:
        assert (await client.complete(HELLO)).unwrap().content
        assert (await client.complete(HELLO)).is_ok()
        assert (await other.complete(HELLO)).is_ok()
        assert (await other.complete(HELLO)).is_ok()
    finally:
        await client.close()
        await other.close()
        await backend.close()
    assert len(server.requests) == 4
    assert cache.stats.errors == 1  # the second call did not wait for the dead backend again
    assert retrying.stats.errors >= 2


# -- dependency injection ------------------------------------------------------------------


class MemoryCacheProvider(Provider):
    """What a user's cache module does: register a ``CacheBackendProtocol``."""

    def __init__(self, backend: CacheBackendProtocol) -> None:
        super().__init__()
        self.backend = backend

    async def register(self, container: Container) -> None:
        container.register_instance(CacheBackendProtocol, self.backend)


async def test_di_uses_the_registered_backend(server: OpenAIServer) -> None:
    backend = MemoryCacheBackend()
    config = ClientConfig(
        provider="openai",
        model="gpt-4o",
        api_key="sk-test",
        api_base=server.url + "/v1",
        enable_cache=True,
        cache_ttl=120,
    )
    module = LLMModule.configure(config)
    async with Application.boot(modules=[module, _module_of(MemoryCacheProvider(backend))]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        await llm.complete(HELLO)
        assert (await llm.complete(HELLO)).unwrap().cached
        cache = await app.container.resolve(LLMCache)
        assert cache.backend is backend
        assert cache.ttl == 120
    assert len(server.requests) == 1
    assert backend.stats.entries == 1


async def test_di_without_a_backend_falls_back_to_memory(server: OpenAIServer) -> None:
    config = ClientConfig(
        provider="openai",
        model="gpt-4o",
        api_key="sk-test",
        api_base=server.url + "/v1",
        enable_cache=True,
    )
    async with Application.boot(modules=[LLMModule.configure(config)]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        await llm.complete(HELLO)
        assert (await llm.complete(HELLO)).unwrap().cached
        cache = await app.container.resolve(LLMCache)
        assert isinstance(cache.backend, MemoryCacheBackend)
    assert len(server.requests) == 1


def _module_of(provider: Provider) -> Any:
    from lexigram.di import DynamicModule, Module

    class CacheModule(Module):
        pass

    return DynamicModule(module=CacheModule, providers=(provider,))


def test_cache_is_importable_from_the_package_root() -> None:
    import lexigram.ai.llm as llm

    assert llm.LLMCache is LLMCache
