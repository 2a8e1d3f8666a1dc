"""Tool-call arguments as providers really send them: a JSON object instead of its text, or
text that is not JSON. Over real HTTP on loopback (OpenAI and Cohere wires), streamed and not:
the answer is always ``Ok``, arguments are always JSON text, and ``parsed_arguments()`` either
gives the object or raises the typed ``ToolArgumentsError``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.cohere_server import CohereServer
from harness.conformance import SECRET
from harness.openai_server import OpenAIServer
from harness.server import RecordedRequest, Reply, sse
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, LLMError, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import ToolArgumentsError
from lexigram.ai.llm.stream import StreamAccumulator
from lexigram.ai.llm.types import Completion, FunctionCall, StreamChunk, ToolCall, ToolCallDelta

ASK = [{"role": "user", "content": "Weather in Paris?"}]


class OpenAIArgumentsServer(OpenAIServer):
    """Answers one tool call whose ``arguments`` are sent exactly as ``self.arguments`` (an
    object, broken text...), in one piece when streamed."""

    arguments: Any = None

    def _tool_call(self) -> dict[str, Any]:
        return {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": self.arguments},
        }

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        body = orjson.loads(super().render_body(reply, request))
        body["choices"][0]["message"].update(content=None, tool_calls=[self._tool_call()])
        body["choices"][0]["finish_reason"] = "tool_calls"
        return orjson.dumps(body)

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        call = {"index": 0, **self._tool_call()}
        return [
            self._chunk(request, {"role": "assistant", "content": None}),
            self._chunk(request, {"tool_calls": [call]}),
            self._chunk(request, {}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]


@pytest_asyncio.fixture
async def openai_server() -> AsyncIterator[OpenAIArgumentsServer]:
    srv = OpenAIArgumentsServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest_asyncio.fixture
async def openai_client(openai_server: OpenAIArgumentsServer) -> AsyncIterator[AbstractLLMClient]:
    llm = create_llm_client(
        ClientConfig(
            provider="openai",
            model="gpt-test",
            api_base=openai_server.url + "/v1",
            api_key=SecretStr("sk-test"),
            max_retries=0,
        )
    )
    try:
        yield llm
    finally:
        await llm.close()


async def _answer(llm: AbstractLLMClient, *, stream: bool) -> Completion:
    if stream:
        return (await llm.stream_chat(ASK).completion()).unwrap()
    return (await llm.complete(ASK)).unwrap()


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_openai_object_arguments_become_their_json_text(
    openai_server: OpenAIArgumentsServer, openai_client: AbstractLLMClient, stream: bool
) -> None:
    openai_server.arguments = {"city": "Paris", "days": [1, 2]}
    completion = await _answer(openai_client, stream=stream)
    (call,) = completion.tool_calls
    assert isinstance(call.arguments, str)
    assert orjson.loads(call.arguments) == {"city": "Paris", "days": [1, 2]}
    assert call.parsed_arguments() == {"city": "Paris", "days": [1, 2]}
    # Sent back in a history, the call goes out as OpenAI wants it: arguments as text.
    openai_server.arguments = "{}"
    history = [
        *ASK,
        completion.to_message(),
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    ]
    assert (await openai_client.complete(history)).is_ok()
    sent = openai_server.requests[-1].json["messages"][1]["tool_calls"][0]["function"]
    assert orjson.loads(sent["arguments"]) == {"city": "Paris", "days": [1, 2]}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ('{"city": "Par', "not valid JSON"),
        ("city=Paris", "not valid JSON"),
        ('["Paris"]', "not an object"),
        ([1, 2], "not an object"),
    ],
    ids=["cut-short", "not-json", "json-array-text", "json-array"],
)
async def test_openai_arguments_that_are_no_object_raise_the_typed_error(
    openai_server: OpenAIArgumentsServer,
    openai_client: AbstractLLMClient,
    stream: bool,
    arguments: Any,
    problem: str,
) -> None:
    openai_server.arguments = arguments
    completion = await _answer(openai_client, stream=stream)
    (call,) = completion.tool_calls
    assert isinstance(call.arguments, str)
    with pytest.raises(ToolArgumentsError, match=problem) as caught:
        call.parsed_arguments()
    error = caught.value
    assert isinstance(error, LLMError) and isinstance(error, ValueError)
    assert error.code == "invalid_tool_arguments"
    assert error.details == {"tool_call_id": "call_1", "tool_name": "get_weather"}


@pytest_asyncio.fixture
async def cohere_server() -> AsyncIterator[CohereServer]:
    srv = CohereServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _cohere_body(arguments: Any) -> bytes:
    return orjson.dumps(
        {
            "id": "gen-1",
            "message": {
                "role": "assistant",
                "tool_plan": "I will look it up.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": arguments},
                    }
                ],
            },
            "finish_reason": "TOOL_CALL",
            "usage": {"tokens": {"input_tokens": 3, "output_tokens": 4}},
        }
    )


def _cohere_events(arguments: Any) -> list[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return sse(payload, event=payload["type"])

    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    return [
        event(
            {"id": "gen-1", "type": "message-start", "delta": {"message": {"role": "assistant"}}}
        ),
        event({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": call}}}),
        event({"type": "tool-call-end", "index": 0}),
        event(
            {
                "type": "message-end",
                "delta": {
                    "finish_reason": "TOOL_CALL",
                    "usage": {"tokens": {"input_tokens": 3, "output_tokens": 4}},
                },
            }
        ),
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_cohere_object_arguments_become_their_json_text(
    cohere_server: CohereServer, stream: bool
) -> None:
    arguments = {"city": "Paris"}
    cohere_server.script(Reply(raw_body=_cohere_body(arguments)))
    cohere_server.raw_stream = _cohere_events(arguments)
    llm = create_llm_client(
        ClientConfig(
            provider="cohere",
            model="command-a-03-2025",
            api_base=cohere_server.url,
            api_key=SecretStr(SECRET),
            max_retries=0,
        )
    )
    try:
        completion = await _answer(llm, stream=stream)
    finally:
        await llm.close()
    (call,) = completion.tool_calls
    assert call.arguments == '{"city":"Paris"}'
    assert call.parsed_arguments() == {"city": "Paris"}


# -- the value types every codec builds (any JSON value, any text) --------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def _parsed_or_typed_error(call: ToolCall) -> None:
    with contextlib.suppress(ToolArgumentsError):
        assert isinstance(call.parsed_arguments(), dict)


@given(arguments=JSON_VALUES | st.text())
def test_any_arguments_give_text_and_a_dict_or_the_typed_error(arguments: Any) -> None:
    built = ToolCall(id="c", function=FunctionCall("f", arguments))
    assert isinstance(built.arguments, str)
    _parsed_or_typed_error(built)


@given(fragments=st.lists(JSON_VALUES | st.text(), min_size=1, max_size=4))
def test_streamed_fragments_of_any_kind_fold_into_text(fragments: list[Any]) -> None:
    accumulator = StreamAccumulator()
    accumulator.add(StreamChunk(tool_calls=(ToolCallDelta(0, "c", "f"),)))
    for fragment in fragments:
        accumulator.add(StreamChunk(tool_calls=(ToolCallDelta(0, arguments=fragment),)))
    (call,) = accumulator.to_completion("p", "m").tool_calls
    assert isinstance(call.arguments, str)
    _parsed_or_typed_error(call)
