"""Cohere v2 specifics over real HTTP: what reaches ``/v2/chat`` (roles, tools, documents,
response format, thinking), the typed events of Cohere's own examples, and its error statuses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.cohere_server import GENERATION_ID, CohereServer
from harness.conformance import SECRET
from harness.server import Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMAuthenticationError,
    LLMError,
    LLMTimeoutError,
    StreamError,
)
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.providers.cohere import CODEC, PROFILES
from lexigram.ai.llm.types import DocumentPart, ImageDataPart, ResponseFormat, TextPart
from lexigram.contracts.ai.thinking import ThinkingConfig
from lexigram.result import Err

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


@pytest_asyncio.fixture
async def server() -> AsyncIterator[CohereServer]:
    srv = CohereServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def client_for(server: CohereServer, **config: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "cohere",
        "model": "command-a-03-2025",
        "api_base": server.url,
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
    }
    values.update(config)
    return create_llm_client(ClientConfig(**values))


@pytest_asyncio.fixture
async def client(server: CohereServer) -> AsyncIterator[AbstractLLMClient]:
    llm = client_for(server)
    try:
        yield llm
    finally:
        await llm.close()


def sse_lines(*payloads: dict[str, Any]) -> list[bytes]:
    """Cohere's wire form of events: ``event: <type>`` then ``data: <json>``."""
    return [
        f"event: {p['type']}\n".encode() + b"data: " + orjson.dumps(p) + b"\n\n" for p in payloads
    ]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "query_daily_sales_report",
            "description": "Sales for a day",
            "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
        },
    },
    {
        "name": "query_product_catalog",
        "description": "Products in a category",
        "parameters": {"type": "object", "properties": {"category": {"type": "string"}}},
        "strict": True,
    },
]


# -- what is sent ----------------------------------------------------------------------------


async def test_request_body_in_cohere_v2_shapes(
    server: CohereServer, client: AbstractLLMClient
) -> None:
    history = [
        {"role": "system", "content": "You are a sales analyst."},
        {
            "role": "user",
            "content": [
                TextPart("Sales on 2023-09-29 and the electronics catalog?"),
                DocumentPart(b"Q3 was strong.", media_type="text/plain", name="notes.txt"),
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "thinking": [{"content": "I will query the report."}],
            "tool_calls": [
                {
                    "id": "query_daily_sales_report_hgxxmkby3wta",
                    "type": "function",
                    "function": {
                        "name": "query_daily_sales_report",
                        "arguments": '{"day": "2023-09-29"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "query_daily_sales_report_hgxxmkby3wta",
            "content": '{"total_sales_amount": 10000}',
        },
    ]
    result = await client.complete(
        history,
        tools=TOOLS,
        tool_choice="required",
        max_tokens=300,
        temperature=0.3,
        top_p=0.75,
        seed=42,
        stop_sequences=["END"],
        thinking=ThinkingConfig(budget_tokens=2000),
        documents=[{"id": "doc:1", "data": {"text": "Electronics: 12 products."}}],
    )
    assert result.is_ok(), result
    sent = server.requests[-1]
    assert sent.path == "/v2/chat"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    body = sent.json
    assert body["model"] == "command-a-03-2025"
    assert "stream" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You are a sales analyst."},
        {"role": "user", "content": "Sales on 2023-09-29 and the electronics catalog?"},
        {
            "role": "assistant",
            "tool_plan": "I will query the report.",
            "tool_calls": [
                {
                    "id": "query_daily_sales_report_hgxxmkby3wta",
                    "type": "function",
                    "function": {
                        "name": "query_daily_sales_report",
                        "arguments": '{"day": "2023-09-29"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "query_daily_sales_report_hgxxmkby3wta",
            "content": '{"total_sales_amount": 10000}',
        },
    ]
    assert body["documents"] == [
        {"data": {"text": "Q3 was strong.", "title": "notes.txt"}},
        {"id": "doc:1", "data": {"text": "Electronics: 12 products."}},
    ]
    assert [t["function"]["name"] for t in body["tools"]] == [
        "query_daily_sales_report",
        "query_product_catalog",
    ]
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "query_daily_sales_report",
            "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
            "description": "Sales for a day",
        },
    }
    assert body["strict_tools"] is True
    assert body["tool_choice"] == "REQUIRED"
    assert (body["max_tokens"], body["temperature"], body["p"], body["seed"]) == (
        300,
        0.3,
        0.75,
        42,
    )
    assert body["stop_sequences"] == ["END"]
    assert body["thinking"] == {"type": "enabled", "token_budget": 2000}


async def test_response_format_thinking_off_images_and_tool_choice(
    server: CohereServer, client: AbstractLLMClient
) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    await client.complete(
        [{"role": "user", "content": [TextPart("who?"), ImageDataPart(PNG, "image/png")]}],
        # Cohere's vision model: the table knows command-a takes no images (refused unsent).
        model="command-a-vision-07-2025",
        response_format=ResponseFormat.json_schema(schema),
        thinking=ThinkingConfig(suppress=True),
    )
    body = server.requests[-1].json
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}
    assert body["thinking"] == {"type": "disabled"}
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "who?"},
        {"type": "image_url", "image_url": {"url": ImageDataPart(PNG, "image/png").data_url}},
    ]
    await client.complete(
        [{"role": "user", "content": "json"}],
        response_format={"type": "json_object"},
        tools=TOOLS,
        tool_choice="query_product_catalog",
    )
    body = server.requests[-1].json
    assert body["response_format"] == {"type": "json_object"}
    # Cohere cannot name a tool: only that tool is offered and a call is required.
    assert [t["function"]["name"] for t in body["tools"]] == ["query_product_catalog"]
    assert body["tool_choice"] == "REQUIRED"
    await client.complete([{"role": "user", "content": "x"}], tools=TOOLS, tool_choice="none")
    assert server.requests[-1].json["tool_choice"] == "NONE"


async def test_stream_request(server: CohereServer, client: AbstractLLMClient) -> None:
    assert (await client.stream_chat([{"role": "user", "content": "hi"}]).text()).is_ok()
    sent = server.requests[-1]
    assert sent.json["stream"] is True
    assert sent.headers["accept"] == "text/event-stream"


async def test_a_pdf_document_is_a_typed_error_and_nothing_is_sent(
    server: CohereServer, client: AbstractLLMClient
) -> None:
    result = await client.complete(
        [{"role": "user", "content": [TextPart("summarise"), DocumentPart(b"%PDF-1.7")]}]
    )
    assert isinstance(result, Err)
    assert isinstance(result.error, InvalidRequestError)
    assert server.requests == []


async def test_keys_and_base_url_from_the_sdk_environment_variables(
    server: CohereServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    monkeypatch.setenv("CO_API_URL", server.url)
    llm = create_llm_client(ClientConfig(provider="cohere", model="command-a-03-2025"))
    try:
        with pytest.raises(ConfigurationError, match="CO_API_KEY or COHERE_API_KEY"):
            await llm.complete([{"role": "user", "content": "hi"}])
    finally:
        await llm.close()
    monkeypatch.setenv("COHERE_API_KEY", SECRET)
    llm = create_llm_client(ClientConfig(provider="cohere", model="command-a-03-2025"))
    try:
        assert (await llm.complete([{"role": "user", "content": "hi"}])).is_ok()
        assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    finally:
        await llm.close()


async def test_a_wrong_key_is_an_authentication_error(server: CohereServer) -> None:
    llm = client_for(server, api_key=SecretStr("wrong-key"))
    try:
        error = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, LLMAuthenticationError)
        assert error.provider_message == "invalid api token"
        assert error.request_id == GENERATION_ID
    finally:
        await llm.close()


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(498, LLMAuthenticationError, False), (504, LLMTimeoutError, True)],
)
async def test_cohere_specific_statuses(
    server: CohereServer, status: int, kind: type[Exception], retryable: bool
) -> None:
    llm = client_for(server)
    try:
        server.script(Reply(error="server", status=status))
        error = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap_err()
        assert isinstance(error, kind)
        assert error.retryable is retryable
        assert error.status == status
    finally:
        await llm.close()


# -- what comes back: Cohere's own examples ----------------------------------------------------

# From the API reference's stream-tools example (cohere-developer-experience
# snippets/responses/chat-v2-post/stream-tools.yaml), shortened.
STREAM_TOOLS = sse_lines(
    {
        "type": "message-start",
        "id": "2edfdf70-019c-4f7a-be20-3cdbfaa3dca6",
        "delta": {"message": {"role": "assistant"}},
    },
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will use the query"}}},
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "_daily_sales_report tool."}}},
    {
        "type": "tool-call-start",
        "index": 0,
        "delta": {
            "message": {
                "tool_calls": {
                    "id": "query_daily_sales_report_j3f0adww9pmr",
                    "type": "function",
                    "function": {"name": "query_daily_sales_report", "arguments": ""},
                }
            }
        },
    },
    {
        "type": "tool-call-delta",
        "index": 0,
        "delta": {"message": {"tool_calls": {"function": {"arguments": '{"day": "'}}}},
    },
    {
        "type": "tool-call-delta",
        "index": 0,
        "delta": {"message": {"tool_calls": {"function": {"arguments": '2023-09-29"}'}}}},
    },
    {"type": "tool-call-end", "index": 0},
    {
        "type": "message-end",
        "delta": {
            "finish_reason": "TOOL_CALL",
            "usage": {
                "billed_units": {"input_tokens": 126, "output_tokens": 84},
                "tokens": {"input_tokens": 1589, "output_tokens": 135},
            },
        },
    },
)


async def test_documented_tool_stream(server: CohereServer, client: AbstractLLMClient) -> None:
    server.raw_stream = STREAM_TOOLS
    chunks = (await client.stream_chat([{"role": "user", "content": "sales?"}]).collect()).unwrap()
    assert [c.thinking_delta for c in chunks if c.thinking_delta] == [
        "I will use the query",
        "_daily_sales_report tool.",
    ]
    server.raw_stream = STREAM_TOOLS
    completion = (
        await client.stream_chat([{"role": "user", "content": "sales?"}]).completion()
    ).unwrap()
    assert completion.finish_reason == "tool_calls"
    assert completion.raw_finish_reason == "TOOL_CALL"
    assert completion.thinking is not None
    assert completion.thinking.content == "I will use the query_daily_sales_report tool."
    [call] = completion.tool_calls
    assert call.id == "query_daily_sales_report_j3f0adww9pmr"
    assert call.parsed_arguments() == {"day": "2023-09-29"}
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1589, 135)
    # The plan goes back as ``tool_plan`` with the calls.
    await client.complete(
        [
            {"role": "user", "content": "sales?"},
            completion.to_message(),
            {"role": "tool", "tool_call_id": call.id, "content": "{}"},
        ]
    )
    replayed = server.requests[-1].json["messages"][1]
    assert replayed["tool_plan"] == "I will use the query_daily_sales_report tool."
    assert replayed["tool_calls"][0]["id"] == call.id


# Reasoning-model answer (content blocks of type thinking, then text), as in Cohere's reasoning
# guide and the Vercel AI SDK's recorded fixture; cached tokens in usage.
REASONING_STREAM = sse_lines(
    {"id": "c9117d7f", "type": "message-start", "delta": {"message": {"role": "assistant"}}},
    {
        "type": "content-start",
        "index": 0,
        "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}},
    },
    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "2+2"}}}},
    {
        "type": "content-delta",
        "index": 0,
        "delta": {"message": {"content": {"thinking": " is 4."}}},
    },
    {"type": "content-end", "index": 0},
    {
        "type": "content-start",
        "index": 1,
        "delta": {"message": {"content": {"type": "text", "text": ""}}},
    },
    {
        "type": "content-delta",
        "index": 1,
        "delta": {"message": {"content": {"text": "The answer"}}},
    },
    {"type": "content-delta", "index": 1, "delta": {"message": {"content": {"text": " is 4."}}}},
    {"type": "content-end", "index": 1},
    {
        "type": "message-end",
        "delta": {
            "finish_reason": "COMPLETE",
            "usage": {
                "billed_units": {"input_tokens": 8, "output_tokens": 50},
                "tokens": {"input_tokens": 1394, "output_tokens": 54},
                "cached_tokens": 1360,
            },
        },
    },
)

REASONING_BODY = {
    "id": "c9117d7f",
    "message": {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "2+2 is 4."},
            {"type": "text", "text": "The answer is 4."},
        ],
    },
    "finish_reason": "COMPLETE",
    "usage": {
        "billed_units": {"input_tokens": 8, "output_tokens": 50},
        "tokens": {"input_tokens": 1394, "output_tokens": 54},
        "cached_tokens": 1360,
    },
}


async def test_reasoning_stream_folds_like_the_json_answer(
    server: CohereServer, client: AbstractLLMClient
) -> None:
    server.raw_stream = REASONING_STREAM
    folded = (await client.stream_chat([{"role": "user", "content": "2+2?"}]).completion()).unwrap()
    ctx = CallContext("cohere", "command-a-reasoning-08-2025", server.url, PROFILES["cohere"])
    whole = CODEC.decode(orjson.dumps(REASONING_BODY), {}, ctx)
    assert folded.content == whole.content == "The answer is 4."
    assert folded.thinking == whole.thinking
    assert whole.thinking is not None and whole.thinking.content == "2+2 is 4."
    assert folded.usage == whole.usage
    assert whole.usage.cached_tokens == 1360


async def test_message_end_with_an_error_raises(
    server: CohereServer, client: AbstractLLMClient
) -> None:
    server.raw_stream = [
        *REASONING_STREAM[:3],
        *sse_lines(
            {
                "type": "message-end",
                "delta": {"error": "model overloaded", "finish_reason": "ERROR"},
            }
        ),
    ]
    with pytest.raises(StreamError) as caught:
        async for _ in client.stream_chat([{"role": "user", "content": "hi"}]):
            pass
    assert caught.value.provider_message == "model overloaded"


async def test_stream_without_message_end_raises(
    server: CohereServer, client: AbstractLLMClient
) -> None:
    server.raw_stream = REASONING_STREAM[:-1]
    result = await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
    assert isinstance(result, Err)
    assert isinstance(result.error, StreamError)
    assert result.error.code == "stream_truncated"


def test_decode_documented_tool_answer() -> None:
    # snippets/responses/chat-v2-post/tools.yaml
    body = {
        "id": "9e5f00aa-bf1e-481a-abe3-0eceac18c3ec",
        "message": {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "I will first find the sales summary."}],
            "tool_calls": [
                {
                    "id": "query_daily_sales_report_hgxxmkby3wta",
                    "type": "function",
                    "function": {
                        "name": "query_daily_sales_report",
                        "arguments": '{"day": "2023-09-29"}',
                    },
                },
                {
                    "id": "query_product_catalog_rpg0z5h8yyz2",
                    "type": "function",
                    "function": {
                        "name": "query_product_catalog",
                        "arguments": '{"category": "Electronics"}',
                    },
                },
            ],
        },
        "finish_reason": "TOOL_CALL",
        "usage": {
            "billed_units": {"input_tokens": 127, "output_tokens": 69},
            "tokens": {"input_tokens": 1032, "output_tokens": 124},
        },
    }
    ctx = CallContext("cohere", "command-a-03-2025", "https://api.cohere.com", PROFILES["cohere"])
    completion = CODEC.decode(orjson.dumps(body), {}, ctx)
    assert completion.finish_reason == "tool_calls"
    assert [tc.name for tc in completion.tool_calls] == [
        "query_daily_sales_report",
        "query_product_catalog",
    ]
    assert completion.thinking is not None
    assert completion.thinking.content == "I will first find the sales summary."
    assert completion.usage.total_tokens == 1032 + 124
    assert completion.id == "9e5f00aa-bf1e-481a-abe3-0eceac18c3ec"


_EVENTS = [
    "message-start",
    "content-start",
    "content-delta",
    "content-end",
    "tool-plan-delta",
    "tool-call-start",
    "tool-call-delta",
    "tool-call-end",
    "message-end",
    "citation-start",
]
_KEYS = [
    "type",
    "index",
    "delta",
    "message",
    "content",
    "text",
    "thinking",
    "tool_plan",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "finish_reason",
    "usage",
    "tokens",
    "input_tokens",
    "output_tokens",
    "error",
]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 10**6)
    | st.text(max_size=6)
    | st.sampled_from(_KEYS + _EVENTS),
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
    ctx = CallContext("cohere", "command-a-03-2025", "https://api.cohere.com", PROFILES["cohere"])
    decoder = CODEC.stream_decoder(ctx)
    try:
        for name, payload in events:
            decoder.feed(SSEEvent(orjson.dumps({**payload, "type": name}), name))
        decoder.finish()
    except LLMError:
        pass
    for _, payload in events:
        with contextlib.suppress(LLMError):
            CODEC.decode(orjson.dumps(payload), {}, ctx)
