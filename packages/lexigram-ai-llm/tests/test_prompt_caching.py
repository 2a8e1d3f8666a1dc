"""Prompt caching: ``{"type": "cache_point"}`` parts and ``prompt_cache="auto"`` as each wire
encodes them (Anthropic ``cache_control``), the marker limit, and the response-cache key.

Every test talks to a harness server over real HTTP on loopback and asserts on what it got.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.bedrock_server import BedrockServer, use_test_credentials
from harness.cohere_server import CohereServer
from harness.conformance import SECRET
from harness.gemini_server import GeminiServer
from harness.ollama_server import OllamaServer
from harness.openai_server import OpenAIServer
from harness.responses_server import ResponsesServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.caching import request_cache_key
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import InvalidInputError
from lexigram.ai.llm.types import CachePointPart, ChatMessage, TextPart
from lexigram.result import Err

TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
LONG = "Reference manual. " * 50


@pytest_asyncio.fixture
async def anthropic_server() -> AsyncIterator[AnthropicServer]:
    server = AnthropicServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def bedrock_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BedrockServer]:
    use_test_credentials(monkeypatch)
    server = BedrockServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _client(provider: str, url: str, model: str, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "api_base": url,
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
        "timeout": 10.0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


def _marks(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Where ``cache_control`` sits: ("tools"|"system"|"messages[i]", the control)."""
    found = [("tools", t["cache_control"]) for t in body.get("tools", []) if "cache_control" in t]
    system = body.get("system")
    if isinstance(system, list):
        found += [("system", b["cache_control"]) for b in system if "cache_control" in b]
    for index, turn in enumerate(body["messages"]):
        found += [
            (f"messages[{index}]", b["cache_control"])
            for b in turn["content"]
            if "cache_control" in b
        ]
    return found


# -- Anthropic -----------------------------------------------------------------------------


async def test_anthropic_cache_point_marks_the_block_before_it(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.script(Reply(text="ok"), Reply(text="ok"))
    client = _client("anthropic", anthropic_server.url, "claude-sonnet-5")
    try:
        messages = [
            {
                "role": "system",
                "content": [{"type": "text", "text": LONG}, {"type": "cache_point"}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Document: " + LONG},
                    {"type": "cache_point", "ttl": "1h"},
                    {"type": "text", "text": "Summarise it."},
                ],
            },
        ]
        assert (await client.complete(messages)).is_ok()
        body = anthropic_server.requests[0].json
        assert body["system"] == [
            {"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}
        ]
        assert body["messages"][0]["content"] == [
            {
                "type": "text",
                "text": "Document: " + LONG,
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
            {"type": "text", "text": "Summarise it."},
        ]
        # No cache point, no option: nothing marked (the body is as before).
        assert (await client.complete([{"role": "user", "content": "hi"}])).is_ok()
        assert _marks(anthropic_server.requests[1].json) == []
    finally:
        await client.close()


async def test_anthropic_auto_marks_tools_system_and_conversation(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.script(Reply(text="ok"), Reply(text="ok"))
    client = _client("anthropic", anthropic_server.url, "claude-sonnet-5", prompt_cache="auto")
    try:
        messages = [
            {"role": "system", "content": LONG},
            {"role": "user", "content": "What is in chapter 1?"},
            {"role": "assistant", "content": "Setup."},
            {"role": "user", "content": "And chapter 2?"},
        ]
        assert (await client.complete(messages, tools=[TOOL])).is_ok()
        body = anthropic_server.requests[0].json
        ephemeral = {"type": "ephemeral"}
        assert _marks(body) == [
            ("tools", ephemeral),
            ("system", ephemeral),
            ("messages[2]", ephemeral),
        ]
        assert body["messages"][2]["content"][-1]["text"] == "And chapter 2?"
        # Per call: the TTL, and switched off.
        assert (await client.complete(messages, prompt_cache_ttl="1h", prompt_cache=None)).is_ok()
        assert _marks(anthropic_server.requests[1].json) == []
    finally:
        await client.close()


async def test_anthropic_never_more_than_four_markers_the_last_ones_win(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.script(Reply(text="ok"))
    client = _client("anthropic", anthropic_server.url, "claude-sonnet-5")
    try:
        content: list[Any] = []
        for n in range(6):
            content += [{"type": "text", "text": f"part {n} {LONG}"}, {"type": "cache_point"}]
        result = await client.complete(
            [
                {"role": "system", "content": [TextPart(LONG), CachePointPart()]},
                {"role": "user", "content": content},
            ],
            prompt_cache="auto",
            tools=[TOOL],
        )
        assert result.is_ok()
        body = anthropic_server.requests[0].json
        marks = _marks(body)
        assert len(marks) == 4
        marked = [b["text"][:6] for b in body["messages"][0]["content"] if "cache_control" in b]
        # tools and system lose theirs; the last four parts of the conversation keep theirs
        # (the auto mark on the last block coincides with the explicit one on part 5).
        assert marked == ["part 2", "part 3", "part 4", "part 5"]
        assert all(b["type"] != "cache_point" for b in body["messages"][0]["content"])
    finally:
        await client.close()


async def test_anthropic_streaming_sends_the_same_markers(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.script(Reply(text="ok"))
    client = _client("anthropic", anthropic_server.url, "claude-sonnet-5")
    try:
        message = ChatMessage.user([TextPart(LONG), CachePointPart("5m"), TextPart("Go.")])
        stream = client.stream_chat([message])
        assert (await stream.completion()).is_ok()
        body = anthropic_server.requests[0].json
        assert body["stream"] is True
        assert _marks(body) == [("messages[0]", {"type": "ephemeral", "ttl": "5m"})]
    finally:
        await client.close()


# -- Bedrock Converse ----------------------------------------------------------------------

BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
POINT = {"cachePoint": {"type": "default"}}


def _bedrock(server: BedrockServer, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "bedrock",
        "model": BEDROCK_MODEL,
        "api_base": server.url,
        "max_retries": 0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


async def test_bedrock_cache_point_blocks_explicit_and_auto(bedrock_server: BedrockServer) -> None:
    bedrock_server.script(Reply(text="ok"), Reply(text="ok"))
    client = _bedrock(bedrock_server)
    try:
        messages: list[Any] = [
            {"role": "system", "content": [TextPart(LONG), CachePointPart()]},
            {"role": "user", "content": [TextPart(LONG), CachePointPart(), TextPart("Go.")]},
        ]
        assert (await client.complete(messages)).is_ok()
        body = bedrock_server.requests[0].json
        assert body["system"] == [{"text": LONG}, POINT]
        assert body["messages"][0]["content"] == [{"text": LONG}, POINT, {"text": "Go."}]
        assert (await client.complete(messages, tools=[TOOL], prompt_cache="auto")).is_ok()
        body = bedrock_server.requests[1].json
        assert body["toolConfig"]["tools"][-1] == POINT
        assert body["system"] == [{"text": LONG}, POINT]  # not doubled
        assert body["messages"][-1]["content"] == [{"text": LONG}, POINT, {"text": "Go."}, POINT]
    finally:
        await client.close()


async def test_bedrock_never_more_than_four_cache_points(bedrock_server: BedrockServer) -> None:
    bedrock_server.script(Reply(text="ok"))
    client = _bedrock(bedrock_server, prompt_cache="auto")
    try:
        content: list[Any] = []
        for n in range(5):
            content += [TextPart(f"part {n}"), CachePointPart()]
        messages: list[Any] = [
            {"role": "system", "content": LONG},
            {"role": "user", "content": [*content, TextPart("question")]},
        ]
        assert (await client.complete(messages, tools=[TOOL])).is_ok()
        body = bedrock_server.requests[0].json
        blocks = body["messages"][0]["content"]
        assert POINT not in body["toolConfig"]["tools"] and POINT not in body["system"]
        kept = [blocks[i - 1].get("text") for i, b in enumerate(blocks) if b == POINT]
        assert kept == ["part 2", "part 3", "part 4", "question"]
    finally:
        await client.close()


# -- OpenAI Chat Completions and Responses -------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "server_type", "model"),
    [("openai", OpenAIServer, "gpt-4o-mini"), ("openai_responses", ResponsesServer, "gpt-5-mini")],
)
async def test_openai_prompt_cache_key_and_retention(
    provider: str, server_type: type[OpenAIServer | ResponsesServer], model: str
) -> None:
    server = server_type()
    await server.start()
    client = _client(provider, server.url + "/v1", model, prompt_cache="auto")
    try:
        server.script(*[Reply(text="ok") for _ in range(5)])
        system = {"role": "system", "content": LONG}
        for question in ("one?", "two?"):
            user = {"role": "user", "content": [TextPart(question), CachePointPart()]}
            assert (await client.complete([system, user], tools=[TOOL])).is_ok()
        first, second = (r.json for r in server.requests[:2])
        # One prefix, one key: both calls reach the same cache; no retention asked.
        assert first["prompt_cache_key"].startswith("lexigram-")
        assert first["prompt_cache_key"] == second["prompt_cache_key"]
        assert "prompt_cache_retention" not in first
        assert "cache_point" not in str(first)
        other = {"role": "system", "content": "Another prompt."}
        assert (await client.complete([other, {"role": "user", "content": "hi"}])).is_ok()
        assert server.requests[2].json["prompt_cache_key"] != first["prompt_cache_key"]
        # The TTL asks for the extended retention; the caller's own key wins.
        assert (
            await client.complete(
                [system, {"role": "user", "content": "hi"}],
                prompt_cache_ttl="1h",
                prompt_cache_key="tenant-7",
            )
        ).is_ok()
        sent = server.requests[3].json
        assert sent["prompt_cache_key"] == "tenant-7"
        assert sent["prompt_cache_retention"] == "24h"
        # Without the option nothing is added.
        assert (await client.complete([system], prompt_cache=False)).is_ok()
        assert "prompt_cache_key" not in server.requests[4].json
    finally:
        await client.close()
        await server.stop()


@pytest.mark.parametrize(
    ("provider", "server_type", "path", "model"),
    [
        # groq speaks the OpenAI wire but takes no prompt_cache_key: nothing is added for it.
        ("groq", OpenAIServer, "/v1", "llama-3.3-70b-versatile"),
        ("gemini", GeminiServer, "", "gemini-2.5-flash"),
        ("cohere", CohereServer, "", "command-a-03-2025"),
        ("ollama", OllamaServer, "", "llama3.2"),
    ],
)
async def test_providers_without_markers_ignore_cache_points_silently(
    provider: str, server_type: type[Any], path: str, model: str
) -> None:
    server = server_type()
    await server.start()
    client = _client(provider, server.url + path, model, prompt_cache="auto")
    try:
        server.script(Reply(text="ok"))
        user = {"role": "user", "content": [TextPart("hi"), CachePointPart("1h")]}
        result = await client.complete([user])
        assert result.is_ok(), result
        body = server.requests[0].json
        assert "prompt_cache_key" not in body and "cache" not in str(body).lower()
        assert "hi" in str(body)
    finally:
        await client.close()
        await server.stop()


# -- options and the response-cache key ----------------------------------------------------


async def test_bad_prompt_cache_options_are_invalid_input(
    anthropic_server: AnthropicServer,
) -> None:
    client = _client("anthropic", anthropic_server.url, "claude-sonnet-5")
    try:
        result = await client.complete([{"role": "user", "content": "hi"}], prompt_cache="on")
        assert isinstance(result, Err) and isinstance(result.error, InvalidInputError)
        assert result.error.field == "prompt_cache"
        result = await client.complete(
            [{"role": "user", "content": [{"type": "cache_point", "ttl": "2h"}]}]
        )
        assert isinstance(result, Err) and isinstance(result.error, InvalidInputError)
        assert "ttl" in str(result.error)
        assert anthropic_server.requests == []
    finally:
        await client.close()


def test_cache_points_and_prompt_cache_never_change_the_response_cache_key() -> None:
    client = create_llm_client(
        ClientConfig(provider="anthropic", model="claude-sonnet-5", api_key=SecretStr(SECRET))
    )
    plain = client.build_request([{"role": "user", "content": [{"type": "text", "text": LONG}]}])
    marked = client.build_request(
        [{"role": "user", "content": [{"type": "text", "text": LONG}, {"type": "cache_point"}]}],
        prompt_cache="auto",
        prompt_cache_ttl="1h",
    )
    assert marked.prompt_cache == "auto"
    assert request_cache_key(plain, "anthropic") == request_cache_key(marked, "anthropic")
    other = client.build_request([{"role": "user", "content": "something else"}])
    assert request_cache_key(other, "anthropic") != request_cache_key(plain, "anthropic")


async def test_anthropic_cache_writes_and_reads_are_reported_and_priced(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.cache_creation_tokens = 1500
    anthropic_server.script(
        Reply(text="ok", prompt_tokens=2100, cached_tokens=500, completion_tokens=20)
    )
    client = _client("anthropic", anthropic_server.url, "claude-sonnet-4-5", prompt_cache="auto")
    try:
        completion = (await client.complete([{"role": "user", "content": LONG}])).unwrap()
        assert completion.usage.cache_creation_tokens == 1500
        assert completion.usage.cached_tokens == 500
        # 100 plain input tokens at 3.00, 1,500 written at 3.75, 500 read at 0.30 ($/M).
        expected = (100 * 3.0 + 1500 * 3.75 + 500 * 0.3 + 20 * 15.0) / 1e6
        assert completion.cost == pytest.approx(expected)
    finally:
        await client.close()
