"""Ollama specifics over real HTTP: what reaches the server (options, format, think, images,
tool history), the pull hint for a missing model, and NDJSON streams that are cut or end
without ``"done": true``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.ollama_server import OllamaServer
from harness.server import Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    InvalidRequestError,
    LLMError,
    LLMModelNotFoundError,
    StreamError,
)
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.providers.ollama import CODEC, PROFILES
from lexigram.ai.llm.types import ImageDataPart, ImageURLPart, ResponseFormat, TextPart
from lexigram.contracts.ai.thinking import ThinkingConfig
from lexigram.result import Err

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest_asyncio.fixture
async def server() -> AsyncIterator[OllamaServer]:
    srv = OllamaServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def client_for(server: OllamaServer, **config: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "ollama",
        "model": "llama3.2",
        "api_base": server.url,
        "max_retries": 0,
        "stream_idle_timeout": 5.0,
    }
    values.update(config)
    return create_llm_client(ClientConfig(**values))


@pytest_asyncio.fixture
async def client(server: OllamaServer) -> AsyncIterator[AbstractLLMClient]:
    llm = client_for(server)
    try:
        yield llm
    finally:
        await llm.close()


def ctx(**options: Any) -> CallContext:
    return CallContext("ollama", "llama3.2", "http://localhost:11434", PROFILES["ollama"], options)


# -- what is sent ----------------------------------------------------------------------------


async def test_request_body_options_format_think_and_keep_alive(
    server: OllamaServer,
) -> None:
    llm = client_for(server, temperature=0.2, extra={"num_ctx": 8192, "keep_alive": "10m"})
    try:
        schema = {"type": "object", "properties": {"age": {"type": "integer"}}}
        result = await llm.complete(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "age?"}],
            max_tokens=64,
            stop_sequences=["\n\n"],
            seed=7,
            top_p=0.9,
            response_format=ResponseFormat.json_schema(schema),
            thinking=ThinkingConfig(level="high"),
        )
        assert result.is_ok(), result
        sent = server.requests[-1]
        assert sent.path == "/api/chat"
        assert "authorization" not in sent.headers  # no key, no header
        body = sent.json
        assert body["stream"] is False
        assert body["messages"] == [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "age?"},
        ]
        assert body["options"] == {
            "num_ctx": 8192,
            "temperature": 0.2,
            "num_predict": 64,
            "stop": ["\n\n"],
            "seed": 7,
            "top_p": 0.9,
        }
        assert body["format"] == schema
        assert body["think"] == "high"
        assert body["keep_alive"] == "10m"

        await llm.complete(
            [{"role": "user", "content": "json"}],
            response_format={"type": "json_object"},
            thinking=ThinkingConfig(suppress=True),
            keep_alive=0,
            options={"num_ctx": 2048, "top_k": 20},
        )
        body = server.requests[-1].json
        assert body["format"] == "json"
        assert body["think"] is False
        assert body["keep_alive"] == 0  # per call beats the config
        assert body["options"]["num_ctx"] == 2048
        assert body["options"]["top_k"] == 20
    finally:
        await llm.close()


async def test_stream_request_says_stream_true(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    assert (await client.stream_chat([{"role": "user", "content": "hi"}]).text()).is_ok()
    assert server.requests[-1].json["stream"] is True


async def test_api_key_is_sent_as_bearer_when_set(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-key-123")
    llm = client_for(server)
    try:
        assert (await llm.complete([{"role": "user", "content": "hi"}])).is_ok()
        assert server.requests[-1].headers["authorization"] == "Bearer ollama-key-123"
    finally:
        await llm.close()


async def test_ollama_host_environment_variable_is_the_default_base_url(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}")
    llm = create_llm_client(ClientConfig(provider="ollama", model="llama3.2"))
    try:
        result = await llm.complete([{"role": "user", "content": "hi"}])
        assert result.unwrap().content == Reply().text
        assert len(server.requests) == 1
    finally:
        await llm.close()


async def test_images_and_tool_history_in_ollama_shapes(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    history = [
        {
            "role": "user",
            "content": [
                TextPart("what is this and the weather?"),
                ImageDataPart(PNG, "image/png"),
                ImageURLPart("data:image/png;base64,AAAA"),
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "thinking": [{"content": "I need the weather."}],
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Toronto"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": "11 degrees celsius"},
    ]
    assert (await client.complete(history)).is_ok()
    messages = server.requests[-1].json["messages"]
    assert messages[0]["content"] == "what is this and the weather?"
    assert messages[0]["images"] == [ImageDataPart(PNG).base64, "AAAA"]
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "thinking": "I need the weather.",
        "tool_calls": [
            {
                "id": "call_0",
                "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Toronto"}},
            }
        ],
    }
    # The tool's name comes from the assistant's call when the message does not carry it.
    assert messages[2] == {
        "role": "tool",
        "content": "11 degrees celsius",
        "tool_name": "get_weather",
        "tool_call_id": "call_0",
    }


async def test_an_image_link_is_a_typed_error_and_nothing_is_sent(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    result = await client.complete(
        [{"role": "user", "content": [ImageURLPart("https://example.com/cat.png")]}]
    )
    assert isinstance(result, Err)
    assert isinstance(result.error, InvalidRequestError)
    assert server.requests == []


# -- what comes back -------------------------------------------------------------------------


async def test_missing_model_says_how_to_pull_it(server: OllamaServer) -> None:
    llm = client_for(server, model="qwen3:8b")
    try:
        server.script(Reply(error="not_found"))
        error = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMModelNotFoundError)
        assert "ollama pull qwen3:8b" in str(error)
        assert error.status == 404
        assert error.retryable is False
        stream_error = await llm.stream_chat([{"role": "user", "content": "hi"}]).collect()
        assert isinstance(stream_error, Err)
        assert isinstance(stream_error.error, LLMModelNotFoundError)
    finally:
        await llm.close()


async def test_tool_calls_finish_as_tool_calls_with_the_raw_reason_kept(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    reply = Reply(text="", finish="tool_calls", tool_calls=[("", "get_weather", {"city": "Tokyo"})])
    server.script(reply)
    whole = (await client.complete([{"role": "user", "content": "weather?"}])).unwrap()
    assert whole.finish_reason == "tool_calls"
    assert whole.raw_finish_reason == "stop"
    assert [(tc.id, tc.name, tc.parsed_arguments()) for tc in whole.tool_calls] == [
        ("call_0", "get_weather", {"city": "Tokyo"})
    ]
    server.script(reply)
    folded = (
        await client.stream_chat([{"role": "user", "content": "weather?"}]).completion()
    ).unwrap()
    assert folded.tool_calls == whole.tool_calls
    assert (folded.finish_reason, folded.raw_finish_reason) == ("tool_calls", "stop")


async def test_inline_think_tags_move_into_thinking(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    reply = Reply(text="<think>count the r's</think>\nThree.", chunk_chars=3)
    server.script(reply)
    whole = (await client.complete([{"role": "user", "content": "r's in strawberry?"}])).unwrap()
    assert whole.content == "Three."
    assert whole.thinking is not None and whole.thinking.content == "count the r's"
    server.script(reply)
    folded = (await client.stream_chat([{"role": "user", "content": "?"}]).completion()).unwrap()
    assert folded.content == whole.content
    assert folded.thinking == whole.thinking


async def test_lines_split_anywhere_across_reads_still_decode(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    lines = [
        b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00",'
        b'"message":{"role":"assistant","content":"The"},"done":false}\n',
        b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00",'
        b'"message":{"role":"assistant","content":" sky"},"done":false}\n',
        b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":'
        b'{"role":"assistant","content":""},"done":true,"done_reason":"stop",'
        b'"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,'
        b'"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}\n',
    ]
    whole = b"".join(lines)
    server.raw_stream = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    completion = (
        await client.stream_chat([{"role": "user", "content": "sky?"}]).completion()
    ).unwrap()
    assert completion.content == "The sky"
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (26, 282)


async def test_stream_cut_in_the_middle_of_a_line_raises(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    server.raw_stream = [
        b'{"model":"llama3.2","message":{"role":"assistant","content":"The"},"done":false}\n',
        b'{"model":"llama3.2","message":{"role":"assistant","content":" sk',  # body ends here
    ]
    seen = []
    with pytest.raises(StreamError) as caught:
        async for chunk in client.stream_chat([{"role": "user", "content": "sky?"}]):
            seen.append(chunk.delta)
    assert caught.value.code == "stream_malformed"  # the half line was not taken as whole
    assert seen == ["The"]  # what arrived whole was delivered, the rest is an error


async def test_stream_ending_without_done_true_raises(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    server.raw_stream = [
        b'{"model":"llama3.2","message":{"role":"assistant","content":"The"},"done":false}\n',
        b'{"model":"llama3.2","message":{"role":"assistant","content":" sky"},"done":false}\n',
    ]
    result = await client.stream_chat([{"role": "user", "content": "sky?"}]).collect()
    assert isinstance(result, Err)
    assert isinstance(result.error, StreamError)
    assert result.error.code == "stream_truncated"


async def test_error_line_mid_stream_raises_with_the_provider_message(
    server: OllamaServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="a fairly long answer", stream_error_after=2, error_message="boom"))
    result = await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
    assert isinstance(result, Err)
    assert isinstance(result.error, StreamError)
    assert result.error.provider_message == "boom"


# -- the codec alone, on payloads from docs/api.md -------------------------------------------


def test_decode_documented_tool_call_response() -> None:
    body = orjson.dumps(
        {
            "model": "llama3.2",
            "created_at": "2024-07-22T20:33:28.123648Z",
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "function": {
                            "name": "get_current_weather",
                            "arguments": {"format": "celsius", "location": "Paris, FR"},
                        }
                    }
                ],
            },
            "done_reason": "stop",
            "done": True,
            "total_duration": 885095291,
            "load_duration": 3753500,
            "prompt_eval_count": 122,
            "prompt_eval_duration": 328493000,
            "eval_count": 33,
            "eval_duration": 552222000,
        }
    )
    completion = CODEC.decode(body, {}, ctx())
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls[0].name == "get_current_weather"
    assert completion.tool_calls[0].parsed_arguments() == {
        "format": "celsius",
        "location": "Paris, FR",
    }
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (122, 33)


def test_decode_thinking_and_length() -> None:
    body = (
        b'{"model":"qwen3","created_at":"2025-05-29T09:35:56.836222Z","message":{"role":'
        b'"assistant","content":"It is 3.","thinking":"Count: s-t-r-a-w-b-e-r-r-y."},'
        b'"done_reason":"length","done":true,"prompt_eval_count":17,"eval_count":60}'
    )
    completion = CODEC.decode(body, {}, ctx())
    assert completion.content == "It is 3."
    assert completion.thinking is not None
    assert completion.thinking.content == "Count: s-t-r-a-w-b-e-r-r-y."
    assert completion.finish_reason == "length"


def test_stream_decoder_is_strict_about_its_input() -> None:
    decoder = CODEC.stream_decoder(ctx())
    with pytest.raises(StreamError):
        decoder.feed(b"[1, 2]")
    decoder = CODEC.stream_decoder(ctx())
    with pytest.raises(StreamError):
        decoder.finish()


_KEYS = [
    "message",
    "content",
    "thinking",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "done",
    "done_reason",
    "prompt_eval_count",
    "eval_count",
    "error",
    "model",
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
@given(st.lists(st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=6) | _JSON, max_size=5))
def test_any_json_lines_give_chunks_or_a_typed_error(lines: list[Any]) -> None:
    decoder = CODEC.stream_decoder(ctx())
    try:
        for line in lines:
            decoder.feed(orjson.dumps(line))
        decoder.finish()
    except StreamError:
        pass
    for line in lines:
        with contextlib.suppress(LLMError):
            CODEC.decode(orjson.dumps(line), {}, ctx())
