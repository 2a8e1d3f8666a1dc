"""Anthropic Messages family tests beyond the shared suite: what goes on the wire, extended
thinking round trips with signatures, tool use both ways, prompt-caching usage, structured
output through forced tool use, stream error events and the error types.

Every test talks to ``AnthropicServer`` over real HTTP on loopback; the official ``anthropic``
SDK is used as an oracle that the server's payloads are what the API sends.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.conformance import SECRET, strict_comparable
from harness.server import Reply
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm._framing import SSEDecoder, SSEEvent
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMAuthenticationError,
    LLMError,
    LLMQuotaExceededError,
    LLMTimeoutError,
    StreamError,
    TokenLimitError,
)
from lexigram.ai.llm.providers.anthropic import CODEC, PROFILES
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.types import (
    ChatMessage,
    Completion,
    DocumentPart,
    ImageDataPart,
    ImageURLPart,
    ResponseFormat,
    StreamChunk,
    TextPart,
    ThinkingBlock,
    ThinkingConfig,
)
from lexigram.result import Err, Ok

MODEL = "claude-sonnet-5"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
# A signature with every base64 character class, so any re-encoding would show.
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrk+zLoky3dl/1pkiMOYds=="
REDACTED = (
    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB4URj"
)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[AnthropicServer]:
    server = AnthropicServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_client(server: AnthropicServer, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "anthropic",
        "model": MODEL,
        "api_base": server.url,
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
        "timeout": 10.0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


@pytest_asyncio.fixture
async def client(server: AnthropicServer) -> AsyncIterator[AbstractLLMClient]:
    client = make_client(server)
    try:
        yield client
    finally:
        await client.close()


# -- what goes on the wire -----------------------------------------------------------------


async def test_request_shape_headers_system_and_default_max_tokens(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="ok"))
    result = await client.complete(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Weather?"},
        ],
        stop_sequences=["\n\nHuman:"],
        temperature=0.2,
    )
    assert result.unwrap().content == "ok"
    sent = server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == SECRET
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    body = sent.json
    assert body["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French."},
    ]
    # Consecutive user turns merge; the API wants alternating roles.
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Weather?"}],
        },
    ]
    assert body["max_tokens"] == 4096
    assert body["temperature"] == 0.2
    assert body["stop_sequences"] == ["\n\nHuman:"]
    assert "stream" not in body and "thinking" not in body


async def test_images_and_pdf_documents_are_content_blocks(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    png = b"\x89PNG\r\n\x1a\n fake image bytes"
    pdf = b"%PDF-1.4 fake document"
    server.script(Reply(text="seen"))
    message = ChatMessage.user(
        [
            TextPart("Describe these."),
            ImageDataPart(png, "image/png"),
            ImageURLPart("https://example.com/cat.jpg"),
            ImageURLPart("data:image/gif;base64,R0lGODlh"),
            DocumentPart(data=pdf, name="report.pdf"),
        ]
    )
    assert (await client.complete([message])).is_ok()
    blocks = server.requests[0].json["messages"][0]["content"]
    assert blocks == [
        {"type": "text", "text": "Describe these."},
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": base64.b64encode(png).decode(),
            },
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGODlh"},
        },
        {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "application/pdf",
                "data": base64.b64encode(pdf).decode(),
            },
            "title": "report.pdf",
        },
    ]


async def test_tool_results_lead_the_following_user_turn(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="done"))
    history = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "rain"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert (await client.complete(history, tools=[WEATHER_TOOL])).is_ok()
    body = server.requests[0].json
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["parameters"],
        }
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rain"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
async def test_tool_choice(
    server: AnthropicServer, client: AbstractLLMClient, tool_choice: Any, expected: Any
) -> None:
    server.script(Reply(text="ok"))
    await client.complete(
        [{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], tool_choice=tool_choice
    )
    assert server.requests[0].json["tool_choice"] == expected


# -- extended thinking ---------------------------------------------------------------------


async def test_thinking_config_budget_and_temperature_rules(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="ok"))
    thinking = ThinkingConfig(budget_tokens=2048)
    await client.complete(
        [{"role": "user", "content": "hi"}], thinking=thinking, temperature=0.3, top_p=0.5
    )
    body = server.requests[-1].json
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 2048 + 4096  # room for the answer after the budget
    assert "temperature" not in body and "top_p" not in body  # the API rejects both here

    await client.complete(
        [{"role": "user", "content": "hi"}], thinking=thinking, max_tokens=1500, top_p=0.97
    )
    body = server.requests[-1].json
    assert body["thinking"]["budget_tokens"] == 1499  # budget must stay below max_tokens
    assert body["max_tokens"] == 1500
    assert body["top_p"] == 0.97

    await client.complete(
        [{"role": "user", "content": "hi"}], thinking=ThinkingConfig(budget_tokens=100)
    )
    assert server.requests[-1].json["thinking"]["budget_tokens"] == 1024  # the API minimum

    await client.complete(
        [{"role": "user", "content": "hi"}], thinking=ThinkingConfig(suppress=True)
    )
    assert server.requests[-1].json["thinking"] == {"type": "disabled"}
    assert server.requests[-1].json["temperature"] == 0.7  # the config default, allowed again


async def test_thinking_that_cannot_fit_is_refused_before_the_network(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    result = await client.complete(
        [{"role": "user", "content": "hi"}], thinking=ThinkingConfig(), max_tokens=800
    )
    assert isinstance(result, Err)
    assert isinstance(result.error, InvalidRequestError)
    assert "max_tokens" in str(result.error)
    assert server.requests == []


async def test_thinking_and_tool_round_trip_keeps_blocks_byte_for_byte(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    """Acceptance: a multi-turn tool conversation with thinking on. The second request
    carries the first turn's thinking and redacted_thinking blocks, first in the assistant
    content, exactly as the API sent them; stream and non-stream fold to equal answers."""
    server.redacted_thinking = REDACTED
    first = Reply(
        text="Let me check.",
        thinking="The user wants the weather.\nI should call get_weather for Paris.",
        thinking_signature=SIGNATURE,
        tool_calls=[("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris"})],
        finish="tool_calls",
        prompt_tokens=412,
        completion_tokens=96,
        reasoning_tokens=40,
        chunk_chars=7,
    )
    server.script(first)
    thinking = ThinkingConfig(budget_tokens=2000)
    question = [{"role": "user", "content": "What's the weather in Paris?"}]
    whole = (await client.complete(question, tools=[WEATHER_TOOL], thinking=thinking)).unwrap()
    response_blocks = orjson.loads(server.render_body(first, server.requests[0]))["content"]

    server.script(first)
    streamed = (
        await client.stream_chat(question, tools=[WEATHER_TOOL], thinking=thinking).completion()
    ).unwrap()
    assert strict_comparable(streamed) == strict_comparable(whole)

    assert whole.finish_reason == "tool_calls"
    assert whole.thinking is not None
    assert whole.thinking.blocks == (
        ThinkingBlock(redacted=True, data=REDACTED),
        ThinkingBlock(first.thinking, SIGNATURE),
    )
    assert whole.thinking.signature == SIGNATURE
    assert whole.thinking.tokens == 40
    assert whole.usage.reasoning_tokens == 40

    # Second turn: the answer goes back with the tool result.
    history = [
        *question,
        whole.to_message(),
        {"role": "tool", "tool_call_id": whole.tool_calls[0].id, "content": "18°C, clear"},
    ]
    server.script(Reply(text="It is 18°C and clear in Paris."))
    final = await client.complete(history, tools=[WEATHER_TOOL], thinking=thinking)
    assert final.unwrap().content == "It is 18°C and clear in Paris."

    second = server.requests[-1]
    assistant = second.json["messages"][1]
    assert assistant["role"] == "assistant"
    assert [b["type"] for b in assistant["content"]] == [
        "redacted_thinking",
        "thinking",
        "text",
        "tool_use",
    ]
    for block in response_blocks[:2]:  # the raw bytes of each block, as the server sent them
        assert orjson.dumps(block) in second.body
    assert assistant["content"][:2] == response_blocks[:2]
    assert second.json["messages"][2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
            "content": "18°C, clear",
        }
    ]


async def test_streamed_thinking_arrives_as_deltas_then_one_signed_block(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    server.script(
        Reply(
            text="42",
            thinking="Step one. Step two. Step three.",
            thinking_signature=SIGNATURE,
            chunk_chars=5,
        )
    )
    chunks = await client.stream_chat([{"role": "user", "content": "?"}]).collect()
    assert isinstance(chunks, Ok)
    deltas = [c.thinking_delta for c in chunks.value if c.thinking_delta]
    blocks = [c.thinking_block for c in chunks.value if c.thinking_block is not None]
    assert len(deltas) > 3
    assert "".join(deltas) == "Step one. Step two. Step three."
    assert blocks == [ThinkingBlock("Step one. Step two. Step three.", SIGNATURE)]
    # The block closes before the answer text starts.
    kinds = ["block" if c.thinking_block else "text" if c.delta else "" for c in chunks.value]
    assert kinds.index("block") < kinds.index("text")


# -- usage, structured output, stop reasons ------------------------------------------------


async def test_prompt_caching_usage(server: AnthropicServer, client: AbstractLLMClient) -> None:
    server.cache_creation_tokens = 1500
    reply = Reply(text="cached answer", prompt_tokens=2100, cached_tokens=500, completion_tokens=20)
    server.script(reply)
    whole = (await client.complete([{"role": "user", "content": "hi"}])).unwrap()
    # input 100 + cache creation 1500 + cache read 500 = the request's whole prompt
    assert server.requests[0] is not None
    assert whole.usage.prompt_tokens == 2100
    assert whole.usage.cached_tokens == 500
    assert whole.usage.cache_creation_tokens == 1500
    assert whole.usage.completion_tokens == 20
    assert whole.usage.total_tokens == 2120
    server.script(reply)
    streamed = (await client.stream_chat([{"role": "user", "content": "hi"}]).completion()).unwrap()
    assert streamed.usage == whole.usage


async def test_structured_output_through_forced_tool_use(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    fmt = ResponseFormat.json_schema(schema, name="person")
    answer = {"name": "Ada Lovelace", "age": 36}
    reply = Reply(
        text="", tool_calls=[("toolu_9", "structured_output_person", answer)], finish="tool_calls"
    )
    server.script(reply)
    whole = (
        await client.complete([{"role": "user", "content": "Who?"}], response_format=fmt)
    ).unwrap()
    body = server.requests[0].json
    assert body["tools"][-1]["name"] == "structured_output_person"
    assert body["tools"][-1]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": "structured_output_person"}
    assert orjson.loads(whole.content) == answer
    assert whole.tool_calls == ()
    assert whole.finish_reason == "stop"
    assert whole.raw_finish_reason == "tool_use"

    server.script(reply)  # the server streams the JSON indented, in 5-character pieces
    streamed = (
        await client.stream_chat(
            [{"role": "user", "content": "Who?"}], response_format=fmt
        ).completion()
    ).unwrap()
    assert strict_comparable(streamed) == strict_comparable(whole)

    # Forced tool use is not allowed with extended thinking: the tool is offered instead.
    server.script(reply)
    await client.complete(
        [{"role": "user", "content": "Who?"}],
        response_format=fmt,
        thinking=ThinkingConfig(budget_tokens=1024),
    )
    assert server.requests[-1].json["tool_choice"] == {"type": "auto"}


async def test_refusal_is_a_content_filter_finish(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="", finish="content_filter"))
    completion = (await client.complete([{"role": "user", "content": "..."}])).unwrap()
    assert completion.finish_reason == "content_filter"
    assert completion.raw_finish_reason == "refusal"


# -- failures ------------------------------------------------------------------------------


async def test_overloaded_error_event_mid_stream_is_a_retryable_stream_error(
    server: AnthropicServer,
) -> None:
    client = make_client(server, max_retries=3)
    try:
        server.script(Reply(text="partial answer that breaks", stream_error_after=4))
        seen: list[str] = []
        with pytest.raises(StreamError) as caught:
            async for chunk in client.stream_chat([{"role": "user", "content": "hi"}]):
                seen.append(chunk.delta)
        error = caught.value
        assert error.retryable is True
        assert error.code == "overloaded_error"
        assert error.provider_message == "Overloaded"
        assert "".join(seen)  # text was delivered before the error...
        assert len(server.requests) == 1  # ...so the client did not retry and duplicate it
    finally:
        await client.close()


async def test_stream_cut_before_any_content_is_retried(server: AnthropicServer) -> None:
    client = make_client(server, max_retries=1)
    try:
        # message_start and content_block_start, then the connection drops.
        server.script(Reply(text="never seen", cut_after=2), Reply(text="second try"))
        text = (await client.stream_chat([{"role": "user", "content": "hi"}]).text()).unwrap()
        assert text == "second try"
        assert len(server.requests) == 2
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("kind", "error_class", "status", "retryable"),
    [
        ("request_too_large", TokenLimitError, 413, False),
        ("timeout", LLMTimeoutError, 504, True),
        ("quota", LLMQuotaExceededError, 402, False),
    ],
)
async def test_more_error_types(
    server: AnthropicServer,
    client: AbstractLLMClient,
    kind: str,
    error_class: type[Exception],
    status: int,
    retryable: bool,
) -> None:
    server.script(Reply(error=kind, error_message=f"scripted {kind}"))
    error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
    assert isinstance(error, error_class)
    assert error.status == status
    assert error.retryable is retryable
    assert error.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"  # from the error body
    assert error.code is not None


async def test_a_proxy_page_instead_of_json_maps_by_status(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(error="request_too_large"))
    server.render_error = lambda reply, request: (  # type: ignore[method-assign]
        413,
        b"<html><body>413 Request Entity Too Large</body></html>",
    )
    error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
    assert isinstance(error, TokenLimitError)
    assert error.status == 413


async def test_wrong_key_is_rejected_by_the_server(server: AnthropicServer) -> None:
    client = make_client(server, api_key=SecretStr("sk-ant-wrong-key"))
    try:
        error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMAuthenticationError)
        assert error.status == 401
        assert "sk-ant-wrong-key" not in str(error) + repr(error)
    finally:
        await client.close()


async def test_key_from_environment_and_missing_key(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    client = make_client(server, api_key=None)
    try:
        server.script(Reply(text="from env"))
        assert (await client.complete([{"role": "user", "content": "hi"}])).unwrap().content == (
            "from env"
        )
    finally:
        await client.close()
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    client = make_client(server, api_key=None)
    try:
        with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
            await client.complete([{"role": "user", "content": "hi"}])
    finally:
        await client.close()


# -- the official SDK as an oracle ----------------------------------------------------------


async def test_official_sdk_reads_the_same_answer_from_the_loopback_server(
    server: AnthropicServer, client: AbstractLLMClient
) -> None:
    """The SDK parses the server's message and folds its stream; our client must agree."""
    server.redacted_thinking = REDACTED
    reply = Reply(
        text="Calling the tool.",
        thinking="Need the weather.",
        thinking_signature=SIGNATURE,
        tool_calls=[("toolu_77", "get_weather", {"city": "Oslo", "days": [1, 2]})],
        finish="tool_calls",
        reasoning_tokens=5,
        cached_tokens=3,
    )
    sdk = anthropic.AsyncAnthropic(api_key=SECRET, base_url=server.url, max_retries=0)
    try:
        server.script(reply)
        message = await sdk.messages.create(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
        )
        server.script(reply)
        async with sdk.messages.stream(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
        ) as stream:
            streamed_message = await stream.get_final_message()
    finally:
        await sdk.close()
    server.script(reply)
    ours = (
        await client.stream_chat([{"role": "user", "content": "Weather in Oslo?"}]).completion()
    ).unwrap()

    for sdk_message in (message, streamed_message):
        blocks = sdk_message.content
        assert [b.type for b in blocks] == ["redacted_thinking", "thinking", "text", "tool_use"]
        assert blocks[0].data == REDACTED  # type: ignore[union-attr]
        assert blocks[1].thinking == ours.thinking.content  # type: ignore[union-attr]
        assert blocks[1].signature == ours.thinking.signature  # type: ignore[union-attr]
        assert blocks[2].text == ours.content  # type: ignore[union-attr]
        assert blocks[3].input == ours.tool_calls[0].parsed_arguments()  # type: ignore[union-attr]
        assert blocks[3].id == ours.tool_calls[0].id  # type: ignore[union-attr]
        assert sdk_message.stop_reason == ours.raw_finish_reason
        usage = sdk_message.usage
        assert usage.cache_read_input_tokens == ours.usage.cached_tokens
        assert usage.input_tokens + (usage.cache_read_input_tokens or 0) == (
            ours.usage.prompt_tokens
        )
        assert usage.output_tokens == ours.usage.completion_tokens


# -- property tests: any input gives chunks or a typed error -------------------------------

_KEYS = [
    "type",
    "index",
    "content_block",
    "delta",
    "text",
    "thinking",
    "signature",
    "data",
    "partial_json",
    "name",
    "id",
    "input",
    "message",
    "usage",
    "stop_reason",
    "error",
    "content",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "output_tokens_details",
    "thinking_tokens",
    "model",
]
_TYPES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "text",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "text_delta",
    "thinking_delta",
    "signature_delta",
    "input_json_delta",
    "message",
    "overloaded_error",
    "structured_output_x",
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.sampled_from(_TYPES)
    | st.text(max_size=8)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)
_CTX = CallContext("anthropic", MODEL, "http://x", PROFILES["anthropic"], {})


@settings(max_examples=400, deadline=None)
@given(st.lists(_JSON, max_size=8))
def test_stream_decoder_gives_chunks_or_typed_errors(events: list[Any]) -> None:
    decoder = CODEC.stream_decoder(_CTX)
    try:
        for payload in events:
            for chunk in decoder.feed(SSEEvent(orjson.dumps(payload))):
                assert isinstance(chunk, StreamChunk)
    except LLMError:
        return
    if decoder.done:
        assert decoder.finish() == []
    else:
        with pytest.raises(StreamError):
            decoder.finish()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_stream_decoder_survives_arbitrary_bytes(raw: bytes) -> None:
    decoder = CODEC.stream_decoder(_CTX)
    framer = SSEDecoder()
    try:
        for event in [*framer.feed(raw), *framer.finish()]:
            decoder.feed(event)
        decoder.finish()
    except LLMError:
        pass


@settings(max_examples=300, deadline=None)
@given(_JSON, st.integers(400, 599))
def test_decode_and_map_error_give_completions_or_typed_errors(payload: Any, status: int) -> None:
    body = orjson.dumps(payload)
    outcome: Completion | LLMError
    try:
        outcome = CODEC.decode(body, {}, _CTX)
    except LLMError as exc:
        outcome = exc
    assert isinstance(outcome, Completion | LLMError)
    assert str(outcome) and repr(outcome)
    error = CODEC.map_error(status, {}, body, _CTX)
    assert isinstance(error, LLMError) and error.status == status
    assert str(error) and repr(error)


def test_a_structured_answer_cut_short_by_max_tokens_is_length_streamed_or_not() -> None:
    tool = {"type": "tool_use", "id": "toolu_1", "name": "structured_output_x", "input": {}}
    body = orjson.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [tool],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 5, "output_tokens": 7},
        }
    )
    whole = CODEC.decode(body, {}, _CTX)
    assert whole.content == "{}"
    assert whole.finish_reason == "length"
    decoder = CODEC.stream_decoder(_CTX)
    chunks: list[StreamChunk] = []
    for event in (
        {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": {}}},
        {"type": "content_block_start", "index": 0, "content_block": {**tool, "input": {}}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {}},
        {"type": "message_stop"},
    ):
        chunks += decoder.feed(SSEEvent(orjson.dumps(event)))
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]
