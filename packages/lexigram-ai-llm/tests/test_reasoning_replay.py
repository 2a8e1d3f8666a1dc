"""Reasoning that goes back to OpenAI-compatible hosts that need it: DeepSeek's thinking mode
wants ``reasoning_content`` on the assistant turns of a tool loop (else HTTP 400 "Missing
`reasoning_content` field in the assistant message"), OpenRouter's ``reasoning_details`` are
kept and sent back unchanged. Over real HTTP against the Chat Completions loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.conformance import SECRET, strict_comparable
from harness.openai_server import OpenAIServer, OpenRouterServer
from harness.server import RecordedRequest, Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def make_client(server: Any, provider: str, model: str) -> AbstractLLMClient:
    return create_llm_client(
        ClientConfig(
            provider=provider,
            model=model,
            api_base=server.url + "/v1",
            api_key=SecretStr(SECRET),
            max_retries=0,
        )
    )


@pytest_asyncio.fixture
async def chat_server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _assistant_turns(request: RecordedRequest) -> list[dict[str, Any]]:
    return [m for m in request.json["messages"] if m["role"] == "assistant"]


async def _two_tool_turns(llm: AbstractLLMClient, server: Any, *, streamed: bool) -> None:
    server.script(
        Reply(
            text="",
            thinking="I need Oslo first.",
            tool_calls=[("call_1", "get_weather", {"city": "Oslo"})],
            finish="tool_calls",
        ),
        Reply(
            text="",
            thinking="Now Bergen.",
            tool_calls=[("call_2", "get_weather", {"city": "Bergen"})],
            finish="tool_calls",
        ),
        Reply(text="Both are cold."),
    )
    history: list[Any] = [{"role": "user", "content": "Oslo and Bergen weather?"}]
    for _ in range(2):
        if streamed:
            completion = (await llm.stream_chat(history, tools=TOOLS).completion()).unwrap()
        else:
            completion = (await llm.complete(history, tools=TOOLS)).unwrap()
        history.append(completion.to_message())
        for call in completion.tool_calls:
            history.append({"role": "tool", "tool_call_id": call.id, "content": "cold"})
    assert (await llm.complete(history, tools=TOOLS)).unwrap().content == "Both are cold."


@pytest.mark.parametrize("streamed", [False, True])
async def test_deepseek_thinking_tool_loop_sends_reasoning_content_back(
    chat_server: OpenAIServer, streamed: bool
) -> None:
    llm = make_client(chat_server, "deepseek", "deepseek-reasoner")
    try:
        await _two_tool_turns(llm, chat_server, streamed=streamed)
    finally:
        await llm.close()
    second, third = chat_server.requests[1], chat_server.requests[2]
    assert [m.get("reasoning_content") for m in _assistant_turns(second)] == ["I need Oslo first."]
    assert [m.get("reasoning_content") for m in _assistant_turns(third)] == [
        "I need Oslo first.",
        "Now Bergen.",
    ]
    assert [m["tool_calls"][0]["id"] for m in _assistant_turns(third)] == ["call_1", "call_2"]


async def test_hosts_without_the_quirk_get_no_reasoning_content(
    chat_server: OpenAIServer,
) -> None:
    llm = make_client(chat_server, "openai_compatible", "qwen3")
    try:
        await _two_tool_turns(llm, chat_server, streamed=False)
    finally:
        await llm.close()
    assert all("reasoning_content" not in m for m in _assistant_turns(chat_server.requests[2]))


# -- OpenRouter reasoning_details ---------------------------------------------------------------

DETAILS = [
    {
        "type": "reasoning.text",
        "text": "Let me check the weather.",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgx",
        "format": "anthropic-claude-v1",
        "index": 0,
    },
    {
        "type": "reasoning.encrypted",
        "data": "gAAAAABopaque-encrypted-blob==",
        "id": "rs_0a1b2c",
        "format": "openai-responses-v1",
        "index": 1,
    },
]


class DetailsServer(OpenRouterServer):
    """OpenRouter answering with ``reasoning_details`` (whole in a message, in fragments in a
    stream), as its reasoning-tokens guide shows."""

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        body = orjson.loads(super().render_body(reply, request))
        body["choices"][0]["message"]["reasoning_details"] = DETAILS
        return orjson.dumps(body)

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        events = super().render_events(reply, request)
        text = DETAILS[0]
        pieces = [
            {"type": text["type"], "text": text["text"][:9], "format": text["format"], "index": 0},
            {"type": text["type"], "text": text["text"][9:], "index": 0},
            {"type": text["type"], "text": "", "signature": text["signature"], "index": 0},
            DETAILS[1],
        ]
        details = [self._chunk(request, {"reasoning_details": [piece]}) for piece in pieces]
        return events[:1] + details + events[1:]


@pytest_asyncio.fixture
async def openrouter() -> AsyncIterator[DetailsServer]:
    srv = DetailsServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.mark.parametrize("streamed", [False, True])
async def test_openrouter_reasoning_details_are_sent_back_unchanged(
    openrouter: DetailsServer, streamed: bool
) -> None:
    llm = make_client(openrouter, "openrouter", "anthropic/claude-sonnet-4")
    try:
        await _two_tool_turns(llm, openrouter, streamed=streamed)
    finally:
        await llm.close()
    for turn in _assistant_turns(openrouter.requests[2]):
        assert turn["reasoning_details"] == DETAILS


async def test_openrouter_stream_folds_like_complete(openrouter: DetailsServer) -> None:
    llm = make_client(openrouter, "openrouter", "anthropic/claude-sonnet-4")
    reply = Reply(text="Sunny.", thinking="Let me check the weather.")
    try:
        openrouter.script(reply)
        whole = (await llm.complete([{"role": "user", "content": "q"}])).unwrap()
        openrouter.script(reply)
        folded = (await llm.stream_chat([{"role": "user", "content": "q"}]).completion()).unwrap()
    finally:
        await llm.close()
    # All but the id (the Chat Completions server gives its stream another id).
    assert strict_comparable(folded)[:-1] == strict_comparable(whole)[:-1]
    assert whole.thinking is not None
    assert whole.thinking.content == "Let me check the weather."
    assert whole.thinking.signature == DETAILS[0]["signature"]
