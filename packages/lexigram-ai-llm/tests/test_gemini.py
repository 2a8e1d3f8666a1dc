"""Gemini API family tests beyond the shared suite: the request on the wire, thinking with
thought signatures kept for replay, the function-call round trip (matched by name), safety
blocks, usage, finish reasons, error details, a mid-stream error, incremental stream decoding,
and the API key kept out of every URL, log line and error.

Every test talks to ``GeminiServer`` over real HTTP on loopback.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.conformance import SECRET, strict_comparable
from harness.gemini_server import GeminiServer
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
    LLMContentFilterError,
    LLMError,
    LLMRateLimitError,
    LLMTimeoutError,
    StreamError,
)
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.providers.gemini import CODEC, PROFILES
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
from lexigram.result import Err

MODEL = "gemini-2.5-flash"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
# Real signatures are long base64 strings; this one has every character class.
SIGNATURE = "CiQB0e2Kb+m3tQ9/xk2Wd1Jr7sLq3x3bn5RyXG0m1w2B8Q9yTzkKYQHR7Yp=="
CALL_SIGNATURE = "CmIB0e2Kb2ZcW9x+Y7mTq1lR3Jq8pP0/dXgYx4fHnXk1c3a9tQe5sL2wR0=="


@pytest_asyncio.fixture
async def server() -> AsyncIterator[GeminiServer]:
    server = GeminiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_client(server: GeminiServer, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "gemini",
        "model": MODEL,
        "api_base": server.url,
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
        "timeout": 10.0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


@pytest_asyncio.fixture
async def client(server: GeminiServer) -> AsyncIterator[AbstractLLMClient]:
    client = make_client(server)
    try:
        yield client
    finally:
        await client.close()


# -- what goes on the wire -----------------------------------------------------------------


async def test_request_shape_url_header_system_and_generation_config(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="ok"))
    result = await client.complete(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Weather?"},
        ],
        temperature=0.2,
        max_tokens=256,
        stop_sequences=["END"],
        top_p=0.9,
        seed=7,
        top_k=40,
    )
    assert result.unwrap().content == "ok"
    sent = server.requests[0]
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.query == {}
    assert sent.headers["x-goog-api-key"] == SECRET
    assert "authorization" not in sent.headers
    body = sent.json
    assert body["systemInstruction"] == {
        "parts": [{"text": "You are terse."}, {"text": "Answer in French."}]
    }
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello."}]},
        {"role": "user", "parts": [{"text": "Weather?"}]},
    ]
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 256,
        "stopSequences": ["END"],
        "seed": 7,
        "topK": 40,
    }


async def test_images_and_documents_are_inline_data(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    png = b"\x89PNG\r\n\x1a\n fake image"
    pdf = b"%PDF-1.7 fake"
    server.script(Reply(text="seen"))
    message = ChatMessage.user(
        [
            TextPart("What is in these?"),
            ImageDataPart(png, "image/png"),
            ImageURLPart("data:image/jpeg;base64,/9j/4AAQ"),
            ImageURLPart("gs://bucket/cat.webp"),
            DocumentPart(data=pdf),
        ]
    )
    assert (await client.complete([message])).is_ok()
    assert server.requests[0].json["contents"][0]["parts"] == [
        {"text": "What is in these?"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/cat.webp"}},
        {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(pdf).decode()}},
    ]


async def test_structured_output_and_tool_declarations(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    server.script(Reply(text='{"name": "Ada"}'))
    completion = (
        await client.complete(
            [{"role": "user", "content": "Who?"}],
            response_format=ResponseFormat.json_schema(schema),
            tools=[WEATHER_TOOL],
            tool_choice="get_weather",
        )
    ).unwrap()
    assert orjson.loads(completion.content) == {"name": "Ada"}
    body = server.requests[0].json
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["responseJsonSchema"] == schema
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parametersJsonSchema": WEATHER_TOOL["parameters"],
                }
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    # The OpenAPI-subset fields, for models that predate JSON Schema support.
    openapi = make_client(server, extra={"schema_style": "openapi"})
    try:
        await openapi.complete(
            [{"role": "user", "content": "Who?"}],
            response_format={"type": "json_object"},
            tools=[WEATHER_TOOL],
        )
        await openapi.complete(
            [{"role": "user", "content": "Who?"}],
            response_format=ResponseFormat.json_schema(schema),
        )
    finally:
        await openapi.close()
    assert server.requests[1].json["generationConfig"] == {
        "temperature": 0.7,
        "responseMimeType": "application/json",
    }
    assert "parameters" in server.requests[1].json["tools"][0]["functionDeclarations"][0]
    assert server.requests[2].json["generationConfig"]["responseSchema"] == schema


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        (ThinkingConfig(budget_tokens=2048), {"thinkingBudget": 2048, "includeThoughts": True}),
        (ThinkingConfig(level="high"), {"thinkingLevel": "HIGH", "includeThoughts": True}),
        (ThinkingConfig(suppress=True), {"thinkingBudget": 0}),
        (ThinkingConfig(budget_tokens=512, include_thoughts=False), {"thinkingBudget": 512}),
    ],
)
async def test_thinking_config(
    server: GeminiServer,
    client: AbstractLLMClient,
    thinking: ThinkingConfig,
    expected: dict[str, Any],
) -> None:
    server.script(Reply(text="ok"))
    await client.complete([{"role": "user", "content": "hi"}], thinking=thinking)
    assert server.requests[0].json["generationConfig"]["thinkingConfig"] == expected


# -- thinking and tools --------------------------------------------------------------------


async def test_thinking_and_function_call_round_trip_keeps_signatures(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    """Acceptance: thought text and the signature Gemini put on the function call go back on
    the same parts of the next request; the result is matched by function name; streamed and
    non-streamed answers fold to the same completion."""
    first = Reply(
        text="",
        thinking="The user wants weather. Call get_weather for Paris and Rome.",
        thinking_signature=CALL_SIGNATURE,
        tool_calls=[
            ("ignored", "get_weather", {"city": "Paris"}),
            ("ignored", "get_weather", {"city": "Rome"}),
        ],
        finish="tool_calls",
        prompt_tokens=90,
        completion_tokens=60,
        reasoning_tokens=35,
        chunk_chars=9,
    )
    thinking = ThinkingConfig(budget_tokens=1024)
    question = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    server.script(first)
    whole = (await client.complete(question, tools=[WEATHER_TOOL], thinking=thinking)).unwrap()
    response_parts = orjson.loads(server.render_body(first, server.requests[0]))["candidates"][0][
        "content"
    ]["parts"]
    server.script(first)
    streamed = (
        await client.stream_chat(question, tools=[WEATHER_TOOL], thinking=thinking).completion()
    ).unwrap()
    assert strict_comparable(streamed) == strict_comparable(whole)

    assert whole.finish_reason == "tool_calls"  # Gemini says STOP; the answer calls tools
    assert whole.raw_finish_reason == "STOP"
    assert [(tc.name, tc.parsed_arguments(), tc.signature) for tc in whole.tool_calls] == [
        ("get_weather", {"city": "Paris"}, CALL_SIGNATURE),
        ("get_weather", {"city": "Rome"}, None),
    ]
    assert whole.thinking is not None
    assert whole.thinking.content == first.thinking
    assert whole.thinking.tokens == 35
    assert whole.usage.completion_tokens == 60
    assert whole.usage.reasoning_tokens == 35

    # The tool results name no function: the names come from the assistant's calls.
    history = [*question, whole.to_message()]
    for call, result in zip(
        whole.tool_calls, ("sunny", '{"temp_c": 12, "sky": "rain"}'), strict=True
    ):
        history.append({"role": "tool", "tool_call_id": call.id, "content": result})
    server.script(Reply(text="Sunny in Paris, rainy in Rome."))
    final = await client.complete(history, tools=[WEATHER_TOOL], thinking=thinking)
    assert final.unwrap().content == "Sunny in Paris, rainy in Rome."

    second = server.requests[-1]
    contents = second.json["contents"]
    assert contents[1] == {"role": "model", "parts": response_parts}
    for part in response_parts:  # byte for byte, as the server sent them
        assert orjson.dumps(part) in second.body
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
            {
                "functionResponse": {
                    "name": "get_weather",
                    "response": {"temp_c": 12, "sky": "rain"},
                }
            },
        ],
    }


@pytest.mark.parametrize("on_thought", [False, True], ids=["gemini-3", "gemini-2.5"])
async def test_text_answer_signature_is_kept_and_replayed(
    server: GeminiServer, client: AbstractLLMClient, on_thought: bool
) -> None:
    server.signature_on_thought = on_thought
    reply = Reply(
        text="The answer is 42.",
        thinking="Compute 6 times 7.",
        thinking_signature=SIGNATURE,
        reasoning_tokens=4,
        chunk_chars=4,
    )
    server.script(reply)
    whole = (await client.complete([{"role": "user", "content": "6*7?"}])).unwrap()
    sent_parts = orjson.loads(server.render_body(reply, server.requests[0]))["candidates"][0][
        "content"
    ]["parts"]
    server.script(reply)
    streamed = (
        await client.stream_chat([{"role": "user", "content": "6*7?"}]).completion()
    ).unwrap()
    assert strict_comparable(streamed) == strict_comparable(whole)
    assert whole.thinking is not None
    assert whole.thinking.content == "Compute 6 times 7."
    assert whole.thinking.signature == SIGNATURE
    expected_blocks = (
        (ThinkingBlock("Compute 6 times 7.", SIGNATURE),)
        if on_thought
        else (ThinkingBlock("Compute 6 times 7."), ThinkingBlock("", SIGNATURE))
    )
    assert whole.thinking.blocks == expected_blocks

    server.script(Reply(text="ok"))
    await client.complete(
        [
            {"role": "user", "content": "6*7?"},
            whole.to_message(),
            {"role": "user", "content": "And 6*8?"},
        ]
    )
    assert server.requests[-1].json["contents"][1] == {"role": "model", "parts": sent_parts}


async def test_tool_result_without_a_known_call_is_refused(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    result = await client.complete(
        [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "x", "content": "1"}]
    )
    assert isinstance(result, Err)
    assert isinstance(result.error, InvalidRequestError)
    assert "name" in str(result.error)
    assert server.requests == []


# -- safety, finish reasons, usage ---------------------------------------------------------


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "OTHER"])
async def test_blocked_prompt_is_a_content_filter_error(
    server: GeminiServer, client: AbstractLLMClient, reason: str
) -> None:
    server.block_reason = reason
    error = (await client.complete([{"role": "user", "content": "bad"}])).unwrap_err()
    assert isinstance(error, LLMContentFilterError)
    assert error.code == reason
    assert error.retryable is False
    assert error.details["block_reason"] == reason
    streamed = await client.stream_chat([{"role": "user", "content": "bad"}]).collect()
    assert isinstance(streamed, Err)
    assert isinstance(streamed.error, LLMContentFilterError)
    assert streamed.error.code == reason


async def test_safety_finish_reason_and_malformed_function_call(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="", finish="content_filter"))
    completion = (await client.complete([{"role": "user", "content": "..."}])).unwrap()
    assert (completion.finish_reason, completion.raw_finish_reason) == ("content_filter", "SAFETY")

    body = orjson.dumps(
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": []},
                    "finishReason": "MALFORMED_FUNCTION_CALL",
                    "finishMessage": "Malformed function call: get_weather(city=)",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 30, "totalTokenCount": 30},
            "modelVersion": MODEL,
            "responseId": "abc",
        }
    )
    server.script(Reply(raw_body=body))
    completion = (await client.complete([{"role": "user", "content": "..."}])).unwrap()
    assert (completion.finish_reason, completion.raw_finish_reason) == (
        "error",
        "MALFORMED_FUNCTION_CALL",
    )
    server.script(Reply(text="cut", finish="length"))
    completion = (await client.complete([{"role": "user", "content": "..."}])).unwrap()
    assert (completion.finish_reason, completion.raw_finish_reason) == ("length", "MAX_TOKENS")


async def test_usage_metadata_with_thoughts_and_cache(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    reply = Reply(
        text="hi",
        thinking="hmm",
        prompt_tokens=1200,
        cached_tokens=1024,
        completion_tokens=50,
        reasoning_tokens=30,
    )
    server.script(reply)
    usage = (await client.complete([{"role": "user", "content": "hi"}])).unwrap().usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1200, 50, 1250)
    assert usage.cached_tokens == 1024
    assert usage.reasoning_tokens == 30
    server.script(reply)
    streamed = (await client.stream_chat([{"role": "user", "content": "hi"}]).completion()).unwrap()
    assert streamed.usage == usage


# -- errors and streams --------------------------------------------------------------------


async def test_resource_exhausted_takes_retry_after_from_retry_info(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    server.retry_delay = "17s"
    server.script(Reply(error="rate_limit"))
    error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
    assert isinstance(error, LLMRateLimitError)
    assert error.retry_after == 17.0
    assert error.code == "RESOURCE_EXHAUSTED"


async def test_deadline_exceeded_is_a_retryable_timeout(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    server.script(
        Reply(error="timeout", error_message="Deadline expired before operation could complete.")
    )
    error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
    assert isinstance(error, LLMTimeoutError)
    assert error.status == 504
    assert error.retryable is True


async def test_mid_stream_error_event_is_a_retryable_stream_error(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    reply = Reply(text="a fairly long answer that breaks", stream_error_after=3)
    server.script(reply)
    seen: list[str] = []
    with pytest.raises(StreamError) as caught:
        async for chunk in client.stream_chat([{"role": "user", "content": "hi"}]):
            seen.append(chunk.delta)
    assert "".join(seen) == reply.text[: 3 * reply.chunk_chars]  # three events, then the error
    assert len(server.requests) == 1  # output was delivered: no retry
    assert caught.value.retryable is True
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.details["error_class"] == "ProviderError"


async def test_stream_is_decoded_while_it_arrives(
    server: GeminiServer, client: AbstractLLMClient
) -> None:
    """The first delta reaches the caller while the server is still sending the rest."""
    server.script(Reply(text="z" * 120, chunk_chars=4, chunk_delay=0.02))
    stream = client.stream_chat([{"role": "user", "content": "hi"}])
    async for chunk in stream:
        if chunk.delta:
            assert server.open_streams == 1
            break


async def test_wrong_and_missing_key_are_rejected_by_the_server(server: GeminiServer) -> None:
    client = make_client(server, api_key=SecretStr("AIza-wrong-key"))
    try:
        error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMAuthenticationError)  # Google answers 400 API_KEY_INVALID
        assert (error.status, error.code) == (400, "API_KEY_INVALID")
        assert "AIza-wrong-key" not in str(error) + repr(error)
    finally:
        await client.close()


async def test_key_from_gemini_then_google_env(
    server: GeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-google-key")
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    client = make_client(server, api_key=None)
    try:
        assert (await client.complete([{"role": "user", "content": "hi"}])).is_ok()
        assert server.requests[-1].headers["x-goog-api-key"] == SECRET
    finally:
        await client.close()
    monkeypatch.delenv("GEMINI_API_KEY")
    client = make_client(server, api_key=None)
    try:
        await client.complete([{"role": "user", "content": "hi"}])
        assert server.requests[-1].headers["x-goog-api-key"] == "AIza-google-key"
    finally:
        await client.close()
    monkeypatch.delenv("GOOGLE_API_KEY")
    client = make_client(server, api_key=None)
    try:
        with pytest.raises(ConfigurationError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
            await client.complete([{"role": "user", "content": "hi"}])
    finally:
        await client.close()


async def test_the_key_is_in_no_url_log_line_or_error(
    server: GeminiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(server, max_retries=1, retry_base_delay=0.01)
    try:
        server.script(Reply(error="overloaded"), Reply(text="recovered"))
        assert (await client.complete([{"role": "user", "content": "hi"}])).is_ok()
        server.script(Reply(text="streamed"))
        assert (await client.stream_chat([{"role": "user", "content": "hi"}]).text()).is_ok()
        texts: list[str] = []
        for kind in ("invalid_request", "auth", "permission", "not_found", "rate_limit"):
            server.script(Reply(error=kind, error_message=f"echo {SECRET}"))
            error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
            texts += [str(error), repr(error), str(error.provider_message), str(error.details)]
        server.script(Reply(text="cut here", cut_after=1))
        error = (
            await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
        ).unwrap_err()
        texts += [str(error), repr(error)]
        texts += [repr(client), str(client.config)]
    finally:
        await client.close()
    assert len(server.requests) > 8
    for request in server.requests:
        assert SECRET not in request.path
        assert "key" not in request.query
        assert SECRET not in str(request.query)
    for text in texts:
        assert SECRET not in text
    assert caplog.records  # the retry was logged
    assert SECRET not in caplog.text


# -- property tests: any input gives chunks or a typed error -------------------------------

_KEYS = [
    "candidates",
    "content",
    "parts",
    "text",
    "thought",
    "thoughtSignature",
    "functionCall",
    "name",
    "args",
    "id",
    "finishReason",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "totalTokenCount",
    "cachedContentTokenCount",
    "promptFeedback",
    "blockReason",
    "error",
    "code",
    "status",
    "message",
    "details",
    "@type",
    "reason",
    "retryDelay",
    "modelVersion",
    "responseId",
]
_NAMES = [
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "MALFORMED_FUNCTION_CALL",
    "UNAVAILABLE",
    "RESOURCE_EXHAUSTED",
    "INVALID_ARGUMENT",
    "FAILED_PRECONDITION",
    "API_KEY_INVALID",
    "type.googleapis.com/google.rpc.ErrorInfo",
    "type.googleapis.com/google.rpc.RetryInfo",
    "3s",
    "model",
    "user",
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 600)
    | st.floats(allow_nan=False)
    | st.sampled_from(_NAMES)
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
_CTX = CallContext("gemini", MODEL, "http://x", PROFILES["gemini"], PROFILES["gemini"].quirks)


@settings(max_examples=400, deadline=None)
@given(st.lists(_JSON, max_size=8))
def test_stream_decoder_gives_chunks_or_typed_errors(events: list[Any]) -> None:
    decoder = CODEC.stream_decoder(_CTX)
    try:
        for payload in events:
            for chunk in decoder.feed(SSEEvent(orjson.dumps(payload))):
                assert isinstance(chunk, StreamChunk)
        finished = decoder.finish()
    except LLMError:
        return
    assert finished == []  # finish() returned: a finish reason was seen, nothing is cut


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
