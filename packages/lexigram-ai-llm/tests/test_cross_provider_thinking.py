"""A conversation moves between providers without sending one provider's signatures to another.

Thinking blocks carry their ``origin`` (the wire family whose decoder made them), through
stream folding, conversation export/import and the response cache; each codec that replays
signed reasoning (Anthropic, Gemini, Bedrock) sends a signature back only to the family that
made it. The Anthropic server here rejects signatures it did not issue, as the API does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.anthropic_server import DEFAULT_SIGNATURE, AnthropicServer, _error_body
from harness.bedrock_server import BedrockServer, use_test_credentials
from harness.conformance import SECRET
from harness.gemini_server import GeminiServer
from harness.openai_server import OpenAIServer
from harness.server import RecordedRequest, Reply
from pydantic import SecretStr

from lexigram.ai.llm import (
    ClientConfig,
    ConversationConfig,
    ConversationManager,
    LLMCache,
    create_llm_client,
)
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute
from lexigram.ai.llm.types import ChatMessage, Completion, ThinkingBlock, ThinkingResult
from lexigram.result import Ok

GEMINI_SIGNATURE = "CiQB0e2Kb7gemini-thought-signature-Zx9+/=="
ANTHROPIC_SIGNATURE = "EqQBCgIYAhIManthropic-signature+/=="
QUESTION = {"role": "user", "content": "What is 6 x 7?"}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class StrictAnthropicServer(AnthropicServer):
    """Rejects a thinking block whose signature it did not issue, as the Messages API does."""

    def __init__(self) -> None:
        super().__init__()
        self.issued = {DEFAULT_SIGNATURE, ANTHROPIC_SIGNATURE}

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        rejected = super().check_auth(request)
        if rejected is not None:
            return rejected
        for message in request.json.get("messages", []):
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block.get("type") == "thinking" and block.get("signature") not in self.issued:
                    return 400, _error_body(
                        "invalid_request_error",
                        "messages.1.content.0: Invalid `signature` in `thinking` block",
                    )
        return None


@pytest_asyncio.fixture
async def gemini() -> AsyncIterator[GeminiServer]:
    server = GeminiServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def anthropic() -> AsyncIterator[StrictAnthropicServer]:
    server = StrictAnthropicServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def bedrock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BedrockServer]:
    use_test_credentials(monkeypatch)
    server = BedrockServer()
    await server.start()
    yield server
    await server.stop()


def _client(
    provider: str, api_base: str, cache: LLMCache | None = None, **overrides: Any
) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": provider,
        "model": "test-model",
        "api_base": api_base,
        "api_key": None if provider == "bedrock" else SecretStr(SECRET),
        "max_retries": 0,
        "timeout": 10.0,
        **overrides,
    }
    return create_llm_client(ClientConfig(**values), **({"cache": cache} if cache else {}))


def _thinking_reply(signature: str) -> Reply:
    return Reply(text="42", thinking="Six sevens are forty-two.", thinking_signature=signature)


async def _answer(server: Any, provider: str, api_base: str, *, stream: bool) -> Completion:
    async with _client(provider, api_base) as client:
        if stream:
            result = await client.stream_chat([QUESTION]).completion()
        else:
            result = await client.complete([QUESTION])
    assert isinstance(result, Ok), result
    return result.value


def _sent(server: Any) -> bytes:
    return server.requests[-1].body


# -- origins -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_decoded_blocks_name_their_family_streamed_or_not(
    gemini: GeminiServer, anthropic: StrictAnthropicServer, stream: bool
) -> None:
    gemini.signature_on_thought = True
    gemini.script(_thinking_reply(GEMINI_SIGNATURE))
    from_gemini = await _answer(gemini, "gemini", gemini.url, stream=stream)
    anthropic.script(_thinking_reply(ANTHROPIC_SIGNATURE))
    from_anthropic = await _answer(anthropic, "anthropic", anthropic.url, stream=stream)
    assert from_gemini.thinking is not None and from_anthropic.thinking is not None
    assert [(b.signature, b.origin) for b in from_gemini.thinking.blocks] == [
        (GEMINI_SIGNATURE, "gemini")
    ]
    assert [(b.signature, b.origin) for b in from_anthropic.thinking.blocks] == [
        (ANTHROPIC_SIGNATURE, "anthropic")
    ]


# -- a router falling back mid-conversation ------------------------------------------------


async def test_a_router_falling_back_from_gemini_to_anthropic_mid_conversation(
    gemini: GeminiServer, anthropic: StrictAnthropicServer
) -> None:
    router = LLMRouter.from_config(
        LLMConfig(
            providers=[
                ProviderRoute(
                    name="gemini",
                    model="gemini-2.5-flash",
                    base_url=gemini.url,
                    api_key=SecretStr(SECRET),
                ),
                ProviderRoute(
                    name="anthropic",
                    model="claude-sonnet-5",
                    base_url=anthropic.url,
                    api_key=SecretStr(SECRET),
                ),
            ]
        ),
        default=ClientConfig(max_retries=0, timeout=10.0),
    )
    gemini.signature_on_thought = True
    gemini.script(_thinking_reply(GEMINI_SIGNATURE), Reply(error="server"))
    anthropic.script(Reply(text="Yes, 42."))
    async with router:
        first = (await router.complete([QUESTION])).unwrap()
        assert first.provider == "gemini"
        history = [QUESTION, first.to_message(), {"role": "user", "content": "Sure?"}]
        second = await router.complete(history)
    assert isinstance(second, Ok), second  # not "Invalid `signature` in `thinking` block"
    assert second.value.provider == "anthropic"
    assert GEMINI_SIGNATURE.encode() not in _sent(anthropic)


# -- each codec that replays signatures ----------------------------------------------------


async def test_anthropic_does_not_receive_a_gemini_signature(
    gemini: GeminiServer, anthropic: StrictAnthropicServer
) -> None:
    gemini.script(_thinking_reply(GEMINI_SIGNATURE))  # Gemini 3: the signature on the text
    answer = await _answer(gemini, "gemini", gemini.url, stream=False)
    anthropic.script(Reply(text="ok"))
    async with _client("anthropic", anthropic.url) as client:
        result = await client.complete([QUESTION, answer.to_message(), QUESTION])
    assert isinstance(result, Ok), result
    assistant = anthropic.requests[-1].json["messages"][1]
    assert assistant == {"role": "assistant", "content": [{"type": "text", "text": "42"}]}


async def test_gemini_gets_anthropic_reasoning_without_its_signature(
    gemini: GeminiServer, anthropic: StrictAnthropicServer
) -> None:
    anthropic.redacted_thinking = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw"
    anthropic.script(_thinking_reply(ANTHROPIC_SIGNATURE))
    answer = await _answer(anthropic, "anthropic", anthropic.url, stream=False)
    assert answer.thinking is not None and len(answer.thinking.blocks) == 2
    gemini.script(Reply(text="ok"))
    async with _client("gemini", gemini.url) as client:
        assert (await client.complete([QUESTION, answer.to_message(), QUESTION])).is_ok()
    sent = _sent(gemini)
    assert ANTHROPIC_SIGNATURE.encode() not in sent
    assert b"EmwKAhgBEgy3va3pzix" not in sent  # Anthropic's encrypted reasoning stays home
    model_turn = orjson.loads(sent)["contents"][1]
    assert model_turn == {
        "role": "model",
        "parts": [{"text": "Six sevens are forty-two.", "thought": True}, {"text": "42"}],
    }


async def test_bedrock_does_not_receive_another_familys_signature(
    anthropic: StrictAnthropicServer, bedrock: BedrockServer
) -> None:
    anthropic.script(_thinking_reply(ANTHROPIC_SIGNATURE))
    answer = await _answer(anthropic, "anthropic", anthropic.url, stream=False)
    bedrock.script(Reply(text="ok"))
    async with _client("bedrock", bedrock.url) as client:
        assert (await client.complete([QUESTION, answer.to_message(), QUESTION])).is_ok()
    sent = _sent(bedrock)
    assert ANTHROPIC_SIGNATURE.encode() not in sent
    assert b"reasoningContent" not in sent


@pytest.mark.parametrize("provider", ["gemini", "anthropic"])
async def test_the_same_family_gets_its_signatures_back(
    gemini: GeminiServer, anthropic: StrictAnthropicServer, provider: str
) -> None:
    server: Any = gemini if provider == "gemini" else anthropic
    signature = GEMINI_SIGNATURE if provider == "gemini" else ANTHROPIC_SIGNATURE
    gemini.signature_on_thought = True
    server.script(_thinking_reply(signature), Reply(text="ok"))
    answer = await _answer(server, provider, server.url, stream=True)
    async with _client(provider, server.url) as client:
        assert (await client.complete([QUESTION, answer.to_message(), QUESTION])).is_ok()
    assert signature.encode() in _sent(server)


async def test_a_gemini_tool_call_signature_goes_to_no_other_provider(
    gemini: GeminiServer, anthropic: StrictAnthropicServer, bedrock: BedrockServer
) -> None:
    gemini.script(
        Reply(
            text="",
            tool_calls=[("call_1", "get_weather", {"city": "Paris"})],
            thinking_signature=GEMINI_SIGNATURE,
            finish="tool_calls",
        )
    )
    answer = await _answer(gemini, "gemini", gemini.url, stream=False)
    assert answer.tool_calls[0].signature == GEMINI_SIGNATURE
    history = [
        QUESTION,
        answer.to_message(),
        {"role": "tool", "tool_call_id": answer.tool_calls[0].id, "content": "sunny"},
    ]
    openai = OpenAIServer()
    await openai.start()
    try:
        for server, provider, base in (
            (anthropic, "anthropic", anthropic.url),
            (bedrock, "bedrock", bedrock.url),
            (openai, "openai", openai.url + "/v1"),
        ):
            server.script(Reply(text="ok"))
            async with _client(provider, base) as client:
                # Bedrock rejects tool blocks without a toolConfig: the tool is offered.
                result = await client.complete(history, tools=[WEATHER])
                assert result.is_ok(), (provider, result)
            assert GEMINI_SIGNATURE.encode() not in _sent(server), provider
    finally:
        await openai.stop()


# -- origin survives export, import and the cache ------------------------------------------


def test_origin_survives_message_and_completion_round_trips() -> None:
    block = ThinkingBlock("thought", GEMINI_SIGNATURE, origin="gemini")
    message = ChatMessage.assistant("42", thinking=[block])
    again = ChatMessage.from_dict(orjson.loads(orjson.dumps(message.to_dict())))
    assert again.thinking[0].origin == "gemini"
    assert again.thinking[0].signature == GEMINI_SIGNATURE
    completion = Completion(
        content="42",
        model="m",
        provider="gemini",
        thinking=ThinkingResult.from_blocks((block,)),
    )
    stored = orjson.loads(orjson.dumps(completion.to_dict()))
    assert Completion.from_dict(stored).thinking.blocks[0].origin == "gemini"  # type: ignore[union-attr]
    # An entry written before origins existed still reads back (origin unknown).
    del stored["thinking"]["origins"]
    assert Completion.from_dict(stored).thinking.blocks[0].origin is None  # type: ignore[union-attr]


async def test_origin_survives_a_conversation_export_and_a_cache_hit(
    gemini: GeminiServer, anthropic: StrictAnthropicServer
) -> None:
    gemini.signature_on_thought = True
    gemini.script(_thinking_reply(GEMINI_SIGNATURE))
    cache = LLMCache()
    async with _client("gemini", gemini.url, cache=cache) as llm:
        first = (await llm.complete([QUESTION])).unwrap()
        hit = (await llm.complete([QUESTION])).unwrap()
        assert hit.cached and len(gemini.requests) == 1
        assert hit.thinking is not None and hit.thinking.blocks[0].origin == "gemini"
        manager = ConversationManager(ConversationConfig(), llm)
        await manager.add_message(QUESTION)
        await manager.add_message(first.to_message())
        restored = ConversationManager.from_json(manager.to_json(), llm)
    assert restored.history[1].thinking[0].origin == "gemini"
    anthropic.script(Reply(text="ok"))
    async with _client("anthropic", anthropic.url) as client:
        result = await client.complete([*restored.history, QUESTION])
    assert isinstance(result, Ok), result
    assert GEMINI_SIGNATURE.encode() not in _sent(anthropic)
