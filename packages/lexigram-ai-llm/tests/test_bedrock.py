"""Bedrock specifics over real HTTP: SigV4 signatures checked by the server (a wrong one is an
``LLMAuthenticationError``), Bedrock API keys, regions, the Converse request shapes, stop
reasons, errors met mid-stream, event-stream framing, and the missing-extra message."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.bedrock_server import (
    ACCESS_KEY,
    REGION,
    BedrockServer,
    encode_event_message,
    event,
    exception_event,
    use_test_credentials,
)
from harness.server import Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMAuthenticationError,
    LLMError,
    LLMRateLimitError,
    StreamError,
    TokenLimitError,
)
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.providers.bedrock import (
    CODEC,
    PROFILES,
    EventStreamFramer,
    EventStreamMessage,
)
from lexigram.ai.llm.types import DocumentPart, ImageDataPart, ResponseFormat, TextPart
from lexigram.contracts.ai.thinking import ThinkingConfig
from lexigram.result import Err

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    use_test_credentials(monkeypatch)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[BedrockServer]:
    srv = BedrockServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def client_for(server: BedrockServer, **config: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "bedrock",
        "model": MODEL,
        "api_base": server.url,
        "max_retries": 0,
        "temperature": 0.5,
    }
    values.update(config)
    return create_llm_client(ClientConfig(**values))


@pytest_asyncio.fixture
async def client(server: BedrockServer) -> AsyncIterator[AbstractLLMClient]:
    llm = client_for(server)
    try:
        yield llm
    finally:
        await llm.close()


def ctx(model: str = MODEL) -> CallContext:
    return CallContext(
        "bedrock", model, "https://bedrock-runtime.us-west-2.amazonaws.com", PROFILES["bedrock"]
    )


# -- authentication --------------------------------------------------------------------------


async def test_requests_are_sigv4_signed_for_bedrock_in_the_region(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    assert (await client.complete([{"role": "user", "content": "hi"}])).is_ok()
    sent = server.requests[-1]
    # The model id is URL-quoted in the path; its ":" arrives as the transport sends it.
    assert sent.path == f"/model/{MODEL}/converse"
    auth = sent.headers["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert f"/{REGION}/bedrock/aws4_request" in auth
    assert "x-amz-date" in sent.headers
    assert server.rejections == []


async def test_a_wrongly_signed_request_is_rejected_as_an_authentication_error(
    server: BedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key")
    llm = client_for(server, max_retries=3)
    try:
        error = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMAuthenticationError)
        assert error.status == 403
        assert error.code == "InvalidSignatureException"
        assert error.retryable is False
        assert "signature we calculated does not match" in (error.provider_message or "")
        assert server.rejections == ["InvalidSignatureException"]  # not retried
        stream = await llm.stream_chat([{"role": "user", "content": "hi"}]).collect()
        assert isinstance(stream, Err)
        assert isinstance(stream.error, LLMAuthenticationError)
        assert "not-the-secret-key" not in str(error) + repr(error)
    finally:
        await llm.close()


async def test_an_unknown_access_key_is_an_authentication_error(
    server: BedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    llm = client_for(server)
    try:
        error = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMAuthenticationError)
        assert error.code == "UnrecognizedClientException"
    finally:
        await llm.close()


async def test_session_tokens_are_sent_and_signed(
    server: BedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.session_token = "FwoGZXIvYXdzEXAMPLETOKEN"
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN")
    llm = client_for(server)
    try:
        assert (await llm.complete([{"role": "user", "content": "hi"}])).is_ok()
        assert server.requests[-1].headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLETOKEN"
    finally:
        await llm.close()


async def test_the_signing_region_comes_from_config_before_the_environment(
    server: BedrockServer,
) -> None:
    llm = client_for(server, extra={"region": "eu-central-1"})
    try:
        error = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMAuthenticationError)  # the server lives in us-west-2
        assert "eu-central-1/bedrock/aws4_request" in server.requests[-1].headers["authorization"]
    finally:
        await llm.close()
    server.region = "eu-central-1"
    llm = client_for(server, extra={"region": "eu-central-1"})
    try:
        assert (await llm.complete([{"role": "user", "content": "hi"}])).is_ok()
    finally:
        await llm.close()


async def test_a_bedrock_api_key_is_sent_as_a_bearer_token(
    server: BedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.bearer_token = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    llm = client_for(server)
    try:
        assert (await llm.complete([{"role": "user", "content": "hi"}])).is_ok()
        headers = server.requests[-1].headers
        assert headers["authorization"] == "Bearer ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"
        assert "x-amz-date" not in headers
    finally:
        await llm.close()
    llm = client_for(server, api_key="wrong-api-key")
    try:
        error = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMAuthenticationError)
        assert "wrong-api-key" not in str(error) + repr(error) + repr(llm)
    finally:
        await llm.close()


async def test_missing_credentials_and_region_say_how_to_fix_them(
    server: BedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    llm = client_for(server)
    try:
        with pytest.raises(ConfigurationError, match="AWS_ACCESS_KEY_ID"):
            await llm.complete([{"role": "user", "content": "hi"}])
    finally:
        await llm.close()
    monkeypatch.delenv("AWS_REGION")
    llm = client_for(server)
    try:
        with pytest.raises(ConfigurationError, match="AWS_REGION"):
            await llm.complete([{"role": "user", "content": "hi"}])
    finally:
        await llm.close()
    assert server.requests == []


async def test_an_aws_profile_that_is_not_on_file_is_a_configuration_error(
    server: BedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore raises ProfileNotFound while resolving credentials; it must arrive typed.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    llm = client_for(server)
    try:
        with pytest.raises(ConfigurationError, match="no-such-profile"):
            await llm.complete([{"role": "user", "content": "hi"}])
    finally:
        await llm.close()
    assert server.requests == []


async def test_a_message_with_nothing_to_send_is_left_out(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "again"},
    ]
    assert (await client.complete(messages)).is_ok()
    sent = server.requests[-1].json["messages"]
    assert sent == [{"role": "user", "content": [{"text": "hi"}, {"text": "again"}]}]


def test_default_base_url_is_the_regional_endpoint() -> None:
    llm = create_llm_client(ClientConfig(provider="bedrock", extra={"region": "eu-west-3"}))
    assert llm.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"  # type: ignore[attr-defined]


def test_a_missing_botocore_names_the_extra_to_install() -> None:
    script = (
        "import sys; sys.modules['botocore'] = None\n"
        "from lexigram.ai.llm import ClientConfig, create_llm_client\n"
        "from lexigram.ai.llm.exceptions import MissingExtraError\n"
        "try:\n"
        "    create_llm_client(ClientConfig(provider='bedrock', extra={'region': 'us-east-1'}))\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=True,
    ).stdout
    assert "pip install 'lexigram-ai-llm[bedrock]'" in out


# -- what is sent ----------------------------------------------------------------------------


async def test_converse_request_shapes(server: BedrockServer, client: AbstractLLMClient) -> None:
    history = [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                TextPart("What is in the picture and the report?"),
                ImageDataPart(PNG, "image/png"),
                DocumentPart(b"%PDF-1.7", name="Q3 report.v2.pdf"),
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check the weather too.",
            "thinking": [{"content": "Need weather.", "signature": "EqQBCkYIARgC"}],
            "tool_calls": [
                {
                    "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Seattle"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "content": "rain"},
        {"role": "user", "content": "So?"},
    ]
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    result = await client.complete(
        history,
        tools=tools,
        tool_choice="get_weather",
        max_tokens=512,
        top_p=0.9,
        stop_sequences=["STOP"],
    )
    assert result.is_ok(), result
    body = server.requests[-1].json
    assert body["system"] == [{"text": "You are terse."}]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "What is in the picture and the report?"},
                {"image": {"format": "png", "source": {"bytes": ImageDataPart(PNG).base64}}},
                {
                    "document": {
                        "format": "pdf",
                        "name": "Q3 report-v2",
                        "source": {"bytes": DocumentPart(b"%PDF-1.7").base64},
                    }
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "reasoningContent": {
                        "reasoningText": {"text": "Need weather.", "signature": "EqQBCkYIARgC"}
                    }
                },
                {"text": "Let me check the weather too."},
                {
                    "toolUse": {
                        "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                        "name": "get_weather",
                        "input": {"city": "Seattle"},
                    }
                },
            ],
        },
        # The tool result and the next user turn share one user message.
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                        "content": [{"text": "rain"}],
                    }
                },
                {"text": "So?"},
            ],
        },
    ]
    assert body["inferenceConfig"] == {
        "maxTokens": 512,
        "temperature": 0.5,
        "topP": 0.9,
        "stopSequences": ["STOP"],
    }
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "inputSchema": {"json": tools[0]["parameters"]},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "get_weather"}},
    }
    assert "additionalModelRequestFields" not in body


async def test_thinking_goes_in_additional_fields_and_never_when_suppressed(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    await client.complete(
        [{"role": "user", "content": "think"}], thinking=ThinkingConfig(budget_tokens=2048)
    )
    body = server.requests[-1].json
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }
    # Claude counts thinking inside maxTokens; temperature must stay unset while thinking.
    assert body["inferenceConfig"] == {"maxTokens": 2048 + 4096}
    await client.complete(
        [{"role": "user", "content": "quick"}], thinking=ThinkingConfig(suppress=True)
    )
    body = server.requests[-1].json
    assert "additionalModelRequestFields" not in body
    assert body["inferenceConfig"] == {"temperature": 0.5}


async def test_structured_output_uses_output_config(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    await client.complete(
        [{"role": "user", "content": "name?"}],
        response_format=ResponseFormat.json_schema(schema, "person"),
    )
    text_format = server.requests[-1].json["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert text_format["structure"]["jsonSchema"]["name"] == "person"
    assert orjson.loads(text_format["structure"]["jsonSchema"]["schema"]) == schema


async def test_a_web_image_link_is_a_typed_error_and_nothing_is_sent(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    result = await client.complete(
        [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x.test/a.png"}]}]
    )
    assert isinstance(result, Err)
    assert isinstance(result.error, InvalidRequestError)
    assert server.requests == []


# -- what comes back -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
async def test_stop_reasons(
    server: BedrockServer, client: AbstractLLMClient, stop_reason: str, expected: str
) -> None:
    server.script(Reply(text="partial", finish=stop_reason))
    whole = (await client.complete([{"role": "user", "content": "x"}])).unwrap()
    assert (whole.finish_reason, whole.raw_finish_reason) == (expected, stop_reason)
    folded = (await client.stream_chat([{"role": "user", "content": "x"}]).completion()).unwrap()
    assert (folded.finish_reason, folded.raw_finish_reason) == (expected, stop_reason)


async def test_context_length_is_an_invalid_request_carrying_bedrocks_message(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    # Bedrock sends a plain ValidationException; only its text says "too long". Mapping never
    # reads message text, so this is an InvalidRequestError with that text kept for the user.
    server.script(Reply(error="context_length"))
    error = (await client.complete([{"role": "user", "content": "long"}])).unwrap_err()
    assert type(error) is InvalidRequestError
    assert not isinstance(error, TokenLimitError)
    assert error.code == "ValidationException"
    assert "Input is too long for requested model" in str(error)


async def test_cached_prompt_tokens_count_in_the_prompt(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(prompt_tokens=1500, cached_tokens=1200, completion_tokens=20))
    whole = (await client.complete([{"role": "user", "content": "x"}])).unwrap()
    assert (whole.usage.prompt_tokens, whole.usage.cached_tokens) == (1500, 1200)
    assert whole.usage.total_tokens == 1520
    assert whole.request_id is not None


@pytest.mark.parametrize(
    ("exception_type", "kind", "retryable"),
    [
        ("throttlingException", LLMRateLimitError, True),
        ("modelStreamErrorException", StreamError, True),
        ("validationException", InvalidRequestError, False),
    ],
)
async def test_exceptions_in_the_stream_are_typed(
    server: BedrockServer,
    client: AbstractLLMClient,
    exception_type: str,
    kind: type[Exception],
    retryable: bool,
) -> None:
    server.raw_stream = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        exception_event(exception_type, {"message": "stopped mid-way"}),
    ]
    result = await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
    assert isinstance(result, Err)
    assert isinstance(result.error, kind)
    assert result.error.retryable is retryable
    assert result.error.provider_message == "stopped mid-way"


async def test_frames_split_anywhere_across_reads_still_decode(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    frames = b"".join(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " there"}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "end_turn"}),
            event(
                "metadata",
                {
                    "usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11},
                    "metrics": {"latencyMs": 80},
                },
            ),
        ]
    )
    server.raw_stream = [frames[i : i + 5] for i in range(0, len(frames), 5)]
    whole = (await client.stream_chat([{"role": "user", "content": "hi"}]).completion()).unwrap()
    assert whole.content == "Hello there"
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (9, 2)


async def test_stream_ending_after_message_stop_without_metadata_raises(
    server: BedrockServer, client: AbstractLLMClient
) -> None:
    server.raw_stream = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        event("messageStop", {"stopReason": "end_turn"}),
    ]
    result = await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
    assert isinstance(result, Err)
    assert isinstance(result.error, StreamError)
    assert result.error.code == "stream_truncated"


def test_framer_rejects_a_bad_checksum_and_waits_for_a_whole_frame() -> None:
    frame = encode_event_message({":event-type": "messageStart", ":message-type": "event"}, b"{}")
    framer = EventStreamFramer()
    assert framer.feed(frame[:10]) == []
    [message] = framer.feed(frame[10:])
    assert message.event_type == "messageStart"
    corrupt = bytearray(frame)
    corrupt[-1] ^= 0x01
    with pytest.raises(StreamError):
        EventStreamFramer().feed(bytes(corrupt))


def test_decode_a_converse_response_with_reasoning_and_tool_use() -> None:
    # Shape of the Converse API reference's response, with extended thinking and a tool call.
    body = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {
                        "reasoningContent": {
                            "reasoningText": {
                                "text": "The user wants weather.",
                                "signature": "EqQBCkYIARgCIkD",
                            }
                        }
                    },
                    {"text": "I'll check."},
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                            "name": "top_song",
                            "input": {"sign": "WZPZ"},
                        }
                    },
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 375, "outputTokens": 81, "totalTokens": 456},
        "metrics": {"latencyMs": 1340},
    }
    completion = CODEC.decode(orjson.dumps(body), {"x-amzn-RequestId": "req-1"}, ctx())
    assert completion.content == "I'll check."
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls[0].id == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert completion.tool_calls[0].parsed_arguments() == {"sign": "WZPZ"}
    assert completion.thinking is not None
    assert completion.thinking.signature == "EqQBCkYIARgCIkD"
    assert completion.usage.total_tokens == 456
    assert completion.request_id == "req-1"


def test_error_type_comes_from_the_header_or_the_body() -> None:
    error = CODEC.map_error(
        429,
        {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/"},
        b'{"message":"Too many requests"}',
        ctx(),
    )
    assert isinstance(error, LLMRateLimitError)
    error = CODEC.map_error(
        403,
        {},
        b'{"__type":"com.amazon.coral.service#AccessDeniedException","message":"no"}',
        ctx(),
    )
    assert isinstance(error, LLMAuthenticationError)
    assert error.code == "AccessDeniedException"


_EVENTS = [
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
]
_KEYS = [
    "contentBlockIndex",
    "start",
    "delta",
    "toolUse",
    "toolUseId",
    "name",
    "input",
    "text",
    "reasoningContent",
    "signature",
    "redactedContent",
    "stopReason",
    "usage",
    "inputTokens",
    "outputTokens",
    "output",
    "message",
    "content",
    "reasoningText",
    "role",
]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 10**6)
    | st.text(max_size=6)
    | st.sampled_from(_KEYS),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_EVENTS), st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=6)
        ),
        max_size=6,
    )
)
def test_any_events_give_chunks_or_a_typed_error(events: list[tuple[str, dict[str, Any]]]) -> None:
    decoder = CODEC.stream_decoder(ctx())
    try:
        for name, payload in events:
            headers = {":event-type": name, ":message-type": "event"}
            decoder.feed(EventStreamMessage(headers, orjson.dumps(payload)))
        decoder.finish()
    except LLMError:
        pass
    for _, payload in events:
        with contextlib.suppress(LLMError):
            CODEC.decode(orjson.dumps(payload), {}, ctx())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 40))
def test_any_bytes_give_frames_or_a_stream_error(data: bytes, step: int) -> None:
    framer = EventStreamFramer()
    try:
        for i in range(0, len(data), step):
            framer.feed(data[i : i + step])
    except StreamError:
        pass
