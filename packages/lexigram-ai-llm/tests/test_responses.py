"""The OpenAI Responses wire beyond the conformance suite: the official SDK as an oracle of the
loopback server's payloads, reasoning items replayed unchanged through a tool loop, the
``openai`` provider switching to ``/v1/responses`` for Responses-only models, and what the wire
carries (structured output, finish reasons, refusals, mid-stream failures, unknown events)."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
import pytest_asyncio
from harness.conformance import SECRET, strict_comparable
from harness.openai_server import OpenAIServer
from harness.responses_server import DEFAULT_ENCRYPTED, ResponsesServer
from harness.server import RecordedRequest, Reply, sse
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import response_stream_event
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    InvalidRequestError,
    LLMContentFilterError,
    LLMError,
    LLMRateLimitError,
    StreamError,
)
from lexigram.ai.llm.pricing import ModelInfo, lookup_model, model_table
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.providers.responses import CODEC, PROFILES
from lexigram.ai.llm.types import ResponseFormat, ThinkingConfig
from lexigram.result import Err

MODEL = "gpt-5-mini"

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


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ResponsesServer]:
    srv = ResponsesServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def make_client(server: Any, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "openai_responses",
        "model": MODEL,
        "api_base": server.url + "/v1",
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
        "timeout": 10.0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


@pytest_asyncio.fixture
async def client(server: ResponsesServer) -> AsyncIterator[AbstractLLMClient]:
    llm = make_client(server)
    try:
        yield llm
    finally:
        await llm.close()


# -- the SDK as oracle ------------------------------------------------------------------------


async def test_sdk_reads_the_servers_responses_and_streams(server: ResponsesServer) -> None:
    reply = Reply(
        text="It is sunny.",
        thinking="The user wants weather.",
        tool_calls=[("call_abc", "get_weather", {"city": "Oslo"})],
        finish="tool_calls",
        reasoning_tokens=5,
        cached_tokens=4,
    )
    sdk = openai.AsyncOpenAI(api_key=SECRET, base_url=server.url + "/v1", max_retries=0)
    try:
        server.script(reply)
        response = await sdk.responses.create(
            model=MODEL, input="Weather in Oslo?", include=["reasoning.encrypted_content"]
        )
        server.script(reply)
        events = []
        stream = await sdk.responses.create(
            model=MODEL,
            input="Weather in Oslo?",
            include=["reasoning.encrypted_content"],
            stream=True,
        )
        async for event in stream:
            events.append(event)
    finally:
        await sdk.close()
    assert response.output_text == "It is sunny."
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.encrypted_content == DEFAULT_ENCRYPTED
    assert reasoning.summary[0].text == "The user wants weather."
    call = response.output[2]
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == (
        "call_abc",
        "get_weather",
        '{"city":"Oslo"}',
    )
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.output_tokens_details.reasoning_tokens == 5
    # Every event is one the SDK knows (a typed model, not a fallback), in sequence order.
    kinds = [type(event).__name__ for event in events]
    assert "ResponseCreatedEvent" in kinds and kinds[-1] == "ResponseCompletedEvent"
    assert all(name.startswith("Response") and name.endswith("Event") for name in kinds)
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "It is sunny."
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    assert arguments == '{"city":"Oslo"}'
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "It is sunny."


async def test_ours_and_the_sdk_read_the_same_answer(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    reply = Reply(text="Bonjour.", prompt_tokens=9, completion_tokens=3, cached_tokens=2)
    sdk = openai.AsyncOpenAI(api_key=SECRET, base_url=server.url + "/v1", max_retries=0)
    try:
        server.script(reply)
        response = await sdk.responses.create(model=MODEL, input="Say hello in French")
    finally:
        await sdk.close()
    server.script(reply)
    ours = (await client.complete([{"role": "user", "content": "Say hello in French"}])).unwrap()
    assert ours.content == response.output_text
    assert response.usage is not None
    assert ours.usage.prompt_tokens == response.usage.input_tokens
    assert ours.usage.completion_tokens == response.usage.output_tokens
    assert ours.usage.cached_tokens == response.usage.input_tokens_details.cached_tokens
    assert ours.id == response.id
    assert ours.model == response.model


# -- what we send ---------------------------------------------------------------------------


async def test_request_shape(server: ResponsesServer, client: AbstractLLMClient) -> None:
    server.script(Reply(text="ok"))
    await client.complete(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Answer in English."},
        ],
        tools=TOOLS,
        max_tokens=50,
        tool_choice="get_weather",
        previous_response_id="resp_previous",
    )
    sent = server.requests[-1]
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    body = sent.json
    assert body["model"] == MODEL
    assert body["instructions"] == "Be brief."
    assert body["input"] == [
        {"role": "user", "content": "hi"},
        {"role": "developer", "content": "Answer in English."},
    ]
    assert body["max_output_tokens"] == 50
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": False,
        }
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["previous_response_id"] == "resp_previous"
    # Stateless by default; a reasoning model is asked for its encrypted reasoning.
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    # Reasoning models take no sampling temperature (the config's default would be 0.7).
    assert "temperature" not in body


async def test_store_true_and_non_reasoning_models(server: ResponsesServer) -> None:
    llm = make_client(server, model="gpt-4.1-mini")
    try:
        server.script(Reply(text="ok"))
        await llm.complete([{"role": "user", "content": "hi"}], temperature=0.2)
        body = server.requests[-1].json
        assert body["temperature"] == 0.2
        assert body["store"] is False
        assert "include" not in body  # not a reasoning model: nothing encrypted to ask for
        await llm.complete([{"role": "user", "content": "hi"}], store=True)
        assert server.requests[-1].json["store"] is True
    finally:
        await llm.close()


async def test_azure_deployment_asked_to_reason_is_treated_as_a_reasoning_model(
    server: ResponsesServer,
) -> None:
    llm = make_client(
        server, provider="azure-openai-responses", api_base=server.url, model="prod-deployment"
    )
    try:
        server.script(Reply(text="ok", thinking="hmm"))
        completion = (
            await llm.complete(
                [{"role": "user", "content": "hi"}], thinking=ThinkingConfig(effort="low")
            )
        ).unwrap()
    finally:
        await llm.close()
    sent = server.requests[-1]
    assert sent.path == "/openai/v1/responses"
    assert sent.headers["api-key"] == SECRET and "authorization" not in sent.headers
    assert sent.json["model"] == "prod-deployment"
    assert "temperature" not in sent.json
    assert sent.json["include"] == ["reasoning.encrypted_content"]
    assert completion.thinking is not None and completion.thinking.signature == DEFAULT_ENCRYPTED


async def test_thinking_config_asks_for_a_summary(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    server.script(Reply(text="ok"))
    await client.complete(
        [{"role": "user", "content": "hi"}], thinking=ThinkingConfig(effort="high")
    )
    assert server.requests[-1].json["reasoning"] == {"effort": "high", "summary": "auto"}


async def test_structured_output(server: ResponsesServer, client: AbstractLLMClient) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    server.script(Reply(text='{"city": "Oslo"}'))
    result = await client.complete(
        [{"role": "user", "content": "Where?"}],
        response_format=ResponseFormat.json_schema(schema, name="place"),
    )
    assert result.unwrap().content == '{"city": "Oslo"}'
    assert server.requests[-1].json["text"] == {
        "format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}
    }


@pytest.mark.parametrize("field", ["stop_sequences", "seed"])
async def test_unsupported_parameters_are_typed_errors(
    server: ResponsesServer, client: AbstractLLMClient, field: str
) -> None:
    value: Any = ["END"] if field == "stop_sequences" else 7
    result = await client.complete([{"role": "user", "content": "hi"}], **{field: value})
    assert isinstance(result, Err)
    assert isinstance(result.error, InvalidRequestError)
    assert server.requests == []


# -- reasoning round trip ---------------------------------------------------------------------


def _reasoning_items(request: RecordedRequest) -> list[dict[str, Any]]:
    return [i for i in request.json["input"] if i.get("type") == "reasoning"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_tool_loop_replays_reasoning_items_unchanged(
    server: ResponsesServer, client: AbstractLLMClient, streamed: bool
) -> None:
    first = Reply(
        text="",
        thinking="I should look up the weather.",
        thinking_signature="gAAAAABencrypted-turn-1==",
        tool_calls=[("call_1", "get_weather", {"city": "Oslo"})],
        finish="tool_calls",
        reasoning_tokens=12,
    )
    second = Reply(
        text="",
        thinking="Now the other city.",
        thinking_signature="gAAAAABencrypted-turn-2==",
        tool_calls=[("call_2", "get_weather", {"city": "Bergen"})],
        finish="tool_calls",
    )
    server.script(first, second, Reply(text="Oslo 3°C, Bergen 7°C."))
    history: list[Any] = [{"role": "user", "content": "Weather in Oslo and Bergen?"}]
    sent_items: list[dict[str, Any]] = []
    for turn in range(2):
        if streamed:
            completion = (await client.stream_chat(history, tools=TOOLS).completion()).unwrap()
        else:
            completion = (await client.complete(history, tools=TOOLS)).unwrap()
        assert completion.finish_reason == "tool_calls"
        assert completion.thinking is not None
        block = completion.thinking.blocks[0]
        sent_items.append(server.output_items(server.replies[turn], server.requests[-1])[0])
        assert block.signature == sent_items[-1]["encrypted_content"]
        history.append(completion.to_message())
        for call in completion.tool_calls:
            history.append({"role": "tool", "tool_call_id": call.id, "content": "cold"})
    final = (await client.complete(history, tools=TOOLS)).unwrap()
    assert final.content == "Oslo 3°C, Bergen 7°C."

    # Each reasoning item the server sent came back exactly, before its function call.
    last = server.requests[-1]
    assert _reasoning_items(last) == sent_items
    for item in sent_items:
        assert orjson.dumps(item) in last.body  # byte for byte
    kinds = [i.get("type") or i.get("role") for i in last.json["input"]]
    assert kinds == [
        "user",
        "reasoning",
        "function_call",
        "function_call_output",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    calls = [i for i in last.json["input"] if i.get("type") == "function_call"]
    assert [(c["call_id"], c["name"], orjson.loads(c["arguments"])) for c in calls] == [
        ("call_1", "get_weather", {"city": "Oslo"}),
        ("call_2", "get_weather", {"city": "Bergen"}),
    ]
    outputs = [i for i in last.json["input"] if i.get("type") == "function_call_output"]
    assert [(o["call_id"], o["output"]) for o in outputs] == [
        ("call_1", "cold"),
        ("call_2", "cold"),
    ]


async def test_reasoning_items_do_not_travel_to_another_wire(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    from harness.anthropic_server import AnthropicServer

    server.script(Reply(text="Paris.", thinking="Capital of France."))
    completion = (await client.complete([{"role": "user", "content": "Capital?"}])).unwrap()
    assert completion.thinking is not None
    assert [b.origin for b in completion.thinking.blocks] == ["responses"]
    history = [
        {"role": "user", "content": "Capital?"},
        completion.to_message(),
        {"role": "user", "content": "And of Spain?"},
    ]
    anthropic = AnthropicServer()
    await anthropic.start()
    other = create_llm_client(
        ClientConfig(
            provider="anthropic",
            model="claude-sonnet-4-5",
            api_base=anthropic.url,
            api_key=SecretStr(SECRET),
            max_retries=0,
        )
    )
    try:
        assert (await other.complete(history)).is_ok()
    finally:
        await other.close()
        await anthropic.stop()
    sent = anthropic.requests[-1].body
    assert DEFAULT_ENCRYPTED.encode() not in sent  # OpenAI's encrypted reasoning stays home
    assert b'"type":"reasoning"' not in sent


async def test_stream_folds_exactly_like_complete(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    reply = Reply(
        text="The answer is 42.",
        thinking="Deep thought.",
        tool_calls=[("call_9", "get_weather", {"city": "Paris"})],
        finish="tool_calls",
        reasoning_tokens=3,
        cached_tokens=2,
    )
    server.script(reply)
    whole = (await client.complete([{"role": "user", "content": "q"}], tools=TOOLS)).unwrap()
    server.script(reply)
    folded = (
        await client.stream_chat([{"role": "user", "content": "q"}], tools=TOOLS).completion()
    ).unwrap()
    assert strict_comparable(folded) == strict_comparable(whole)
    assert whole.usage.cached_tokens == 2 and whole.usage.reasoning_tokens == 3
    assert whole.thinking is not None and whole.thinking.content == "Deep thought."
    assert whole.id == server.response_id


# -- finish reasons, refusals, failures ------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "expected", "raw"),
    [("length", "length", "max_output_tokens"), ("content_filter", "content_filter", None)],
)
async def test_incomplete_responses(
    server: ResponsesServer,
    client: AbstractLLMClient,
    finish: str,
    expected: str,
    raw: str | None,
) -> None:
    server.script(Reply(text="cut", finish=finish))
    whole = (await client.complete([{"role": "user", "content": "q"}])).unwrap()
    assert whole.finish_reason == expected
    assert whole.raw_finish_reason == (raw or finish)
    server.script(Reply(text="cut", finish=finish))
    folded = (await client.stream_chat([{"role": "user", "content": "q"}]).completion()).unwrap()
    assert (folded.finish_reason, folded.raw_finish_reason) == (
        whole.finish_reason,
        whole.raw_finish_reason,
    )


async def test_refusal_is_a_content_filter_error(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    server.refusal = "I can't help with that."
    server.script(Reply())
    error = (await client.complete([{"role": "user", "content": "bad"}])).unwrap_err()
    assert isinstance(error, LLMContentFilterError)
    assert error.provider_message == "I can't help with that."
    streamed = await client.stream_chat([{"role": "user", "content": "bad"}]).collect()
    assert isinstance(streamed, Err)
    assert isinstance(streamed.error, LLMContentFilterError)


async def test_response_failed_mid_stream_is_a_typed_error(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    server.fail_with_response_failed = True
    server.script(Reply(text="partial answer here", stream_error_after=4))
    seen = []
    with pytest.raises(StreamError) as caught:
        async for chunk in client.stream_chat([{"role": "user", "content": "q"}]):
            seen.append(chunk)
    assert caught.value.retryable is True  # server_error
    assert caught.value.provider_message == "scripted failure"


async def test_error_event_keeps_the_errors_class(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    server.extra_events = [
        sse(
            {
                "type": "error",
                "code": "rate_limit_exceeded",
                "message": "slow down",
                "param": None,
                "sequence_number": 2,
            },
            "error",
        )
    ]
    server.script(Reply(text="never"))
    with pytest.raises(StreamError) as caught:
        async for _ in client.stream_chat([{"role": "user", "content": "q"}]):
            pass
    assert caught.value.details["error_class"] == LLMRateLimitError.__name__
    assert caught.value.retryable is True


async def test_unknown_and_hosted_tool_events_are_ignored(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    server.extra_events = [
        sse({"type": "response.web_search_call.searching", "item_id": "ws_1", "output_index": 0}),
        sse({"type": "response.output_text.annotation.added", "annotation": {"type": "url"}}),
        sse({"type": "response.audio.delta", "delta": "AAAA"}),
        sse({"type": "response.something_new", "payload": [1, 2, 3]}),
        sse({"type": "response.mcp_call.in_progress", "item_id": "mcp_1"}),
        b"event: keepalive\ndata: \n\n",
    ]
    server.script(Reply(text="Still fine."))
    text = (await client.stream_chat([{"role": "user", "content": "q"}]).text()).unwrap()
    assert text == "Still fine."


async def test_failed_status_in_a_200_is_a_typed_error(
    server: ResponsesServer, client: AbstractLLMClient
) -> None:
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "failed",
        "error": {"code": "rate_limit_exceeded", "message": "Too many requests"},
        "output": [],
    }
    server.script(Reply(raw_body=orjson.dumps(body)))
    error = (await client.complete([{"role": "user", "content": "q"}])).unwrap_err()
    assert isinstance(error, LLMRateLimitError)
    assert error.provider_message == "Too many requests"


# -- the openai provider picks the wire per model ---------------------------------------------


class BothWiresServer(ResponsesServer):
    """One host serving Chat Completions and Responses, as api.openai.com does."""

    routes = ResponsesServer.routes + OpenAIServer.routes
    _chat = OpenAIServer()

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        if request.path.endswith("/responses"):
            return super().render_body(reply, request)
        return self._chat.render_body(reply, request)

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        if request.path.endswith("/responses"):
            return super().render_events(reply, request)
        return self._chat.render_events(reply, request)


@pytest_asyncio.fixture
async def both() -> AsyncIterator[BothWiresServer]:
    srv = BothWiresServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.mark.parametrize("model", ["o3-pro", "gpt-5-pro", "gpt-5-codex", "o3-pro-2025-06-10"])
async def test_openai_provider_sends_responses_only_models_to_responses(
    both: BothWiresServer, model: str
) -> None:
    llm = make_client(both, provider="openai", model=model)
    try:
        both.script(Reply(text="pro answer", thinking="pondering"))
        completion = (await llm.complete([{"role": "user", "content": "hard question"}])).unwrap()
        assert both.requests[-1].path == "/v1/responses"
        assert completion.content == "pro answer"
        assert completion.provider == "openai"
        assert completion.thinking is not None and completion.thinking.signature
        text = (await llm.stream_chat([{"role": "user", "content": "again"}]).text()).unwrap()
        assert text == "pro answer"
        assert both.requests[-1].path == "/v1/responses"
        # Other models of the same client stay on Chat Completions.
        chat = await llm.complete([{"role": "user", "content": "easy"}], model="gpt-4o-mini")
        assert chat.unwrap().content == "pro answer"
        assert both.requests[-1].path == "/v1/chat/completions"
    finally:
        await llm.close()


async def test_a_model_table_entry_decides_the_wire(both: BothWiresServer) -> None:
    table = model_table()
    table.register(ModelInfo("acme-deep-thinker", provider="openai", wire="responses"))
    llm = make_client(both, provider="openai", model="acme-deep-thinker")
    try:
        both.script(Reply(text="from responses"))
        await llm.complete([{"role": "user", "content": "q"}])
        assert both.requests[-1].path == "/v1/responses"
    finally:
        await llm.close()
        table.register(ModelInfo("acme-deep-thinker", provider="openai"))
    forced = make_client(both, provider="openai", model="gpt-4o-mini", extra={"wire": "responses"})
    try:
        await forced.complete([{"role": "user", "content": "q"}])
        assert both.requests[-1].path == "/v1/responses"
    finally:
        await forced.close()


async def test_responses_only_models_are_their_own_table_entries() -> None:
    for name in ("o1-pro", "o3-pro", "gpt-5-pro", "gpt-5-codex", "codex-mini-latest"):
        info = lookup_model(name, "openai")
        assert info is not None and info.name == name and info.wire == "responses"
    chat = lookup_model("gpt-4o-mini", "openai")
    assert chat is not None and chat.wire is None


# -- every documented stream event ----------------------------------------------------------


def _documented_event_types() -> list[str]:
    """The ``type`` of every member of the SDK's ``ResponseStreamEvent`` union."""
    union = typing.get_args(response_stream_event.ResponseStreamEvent)[0]
    return [
        typing.get_args(member.model_fields["type"].annotation)[0]
        for member in typing.get_args(union)
    ]


def _ctx() -> CallContext:
    profile = PROFILES["openai_responses"]
    return CallContext("openai_responses", MODEL, "http://127.0.0.1:1/v1", profile)


def test_every_documented_event_type_is_handled() -> None:
    kinds = _documented_event_types()
    assert len(kinds) > 40 and "response.output_text.delta" in kinds
    for kind in kinds:
        decoder = CODEC.stream_decoder(_ctx())
        event = SSEEvent(orjson.dumps({"type": kind, "sequence_number": 1}), kind)
        if kind in ("error", "response.failed"):
            with pytest.raises(StreamError):
                decoder.feed(event)
            continue
        for chunk in decoder.feed(event):  # bare events: nothing to show, never a crash
            assert not chunk.delta
        assert decoder.done is (kind in ("response.completed", "response.incomplete"))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_FIELDS = st.sampled_from(
    ["delta", "item", "output_index", "response", "arguments", "summary_index", "error", "text"]
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*_documented_event_types(), "response.unknown_future_event"]),
            st.dictionaries(_FIELDS, _JSON, max_size=4),
        ),
        max_size=8,
    )
)
def test_any_event_sequence_gives_chunks_or_a_typed_error(
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    decoder = CODEC.stream_decoder(_ctx())
    try:
        for kind, fields in events:
            decoder.feed(SSEEvent(orjson.dumps({**fields, "type": kind}), kind))
        decoder.finish()
    except LLMError:
        pass  # a typed error is an answer; anything else would escape this test
