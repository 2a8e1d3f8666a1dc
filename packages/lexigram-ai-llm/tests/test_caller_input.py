"""Caller input that cannot make a request: refused before any network call with an
``InvalidInputError`` (an ``InvalidRequestError``) naming the field, returned as ``Err`` by
``complete()`` and raised on first iteration of ``stream_chat()``; never a ``KeyError``,
``AttributeError`` or ``TypeError`` from inside the library, never silently mangled.
Value objects built by hand with a wrong type raise ``TypeError`` naming the field."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness.openai_server import OpenAIServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from lexigram.ai.llm import ChatMessage, ClientConfig, InvalidRequestError, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import InvalidInputError, LLMError
from lexigram.ai.llm.types import (
    DocumentPart,
    ImageDataPart,
    ImageURLPart,
    Role,
    TextPart,
    ToolCall,
    ToolDefinition,
    normalize_messages,
)
from lexigram.result import Err, Ok

HI = {"role": "user", "content": "hi"}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest_asyncio.fixture
async def llm(server: OpenAIServer) -> AsyncIterator[AbstractLLMClient]:
    client = create_llm_client(
        ClientConfig(
            provider="openai",
            model="gpt-test",
            api_base=server.url + "/v1",
            api_key=SecretStr("sk-test"),
            max_retries=0,
        )
    )
    try:
        yield client
    finally:
        await client.close()


# (messages, call keyword arguments, the field the error names)
BAD_CALLS: list[tuple[Any, dict[str, Any], str]] = [
    (None, {}, "messages"),
    ("hi", {}, "messages"),
    (HI, {}, "messages"),
    (42, {}, "messages"),
    ([42], {}, "messages[0]"),
    ([HI, None], {}, "messages[1]"),
    ([{"content": "x"}], {}, "messages[0].role"),
    ([{"role": "wizard", "content": "x"}], {}, "messages[0].role"),
    ([{"role": ["user"], "content": "x"}], {}, "messages[0].role"),
    ([HI, {"role": "user", "content": 123}], {}, "messages[1].content"),
    ([{"role": "user", "content": {"type": "text", "text": "hi"}}], {}, "messages[0].content"),
    ([{"role": "user", "content": b"hi"}], {}, "messages[0].content"),
    ([{"role": "user", "content": [{"type": "text"}]}], {}, "messages[0].content[0].text"),
    (
        [{"role": "user", "content": ["a", {"type": "text", "text": None}]}],
        {},
        "messages[0].content[1].text",
    ),
    ([{"role": "user", "content": [7]}], {}, "messages[0].content[0]"),
    ([{"role": "user", "content": [{"type": "video"}]}], {}, "messages[0].content[0].type"),
    (
        [{"role": "user", "content": [{"type": "image_url"}]}],
        {},
        "messages[0].content[0].image_url",
    ),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}],
        {},
        "messages[0].content[0].image_url",
    ),
    ([{"role": "user", "content": [{"type": "image"}]}], {}, "messages[0].content[0].data"),
    (
        [{"role": "user", "content": [{"type": "image", "data": "abc"}]}],
        {},
        "messages[0].content[0].data",
    ),
    (
        [{"role": "user", "content": [{"type": "image", "data": b"x", "media_type": 3}]}],
        {},
        "messages[0].content[0].media_type",
    ),
    (
        [{"role": "user", "content": [{"type": "document", "url": 5}]}],
        {},
        "messages[0].content[0].url",
    ),
    ([{"role": "user", "content": "x", "name": 5}], {}, "messages[0].name"),
    ([{"role": "tool", "content": "x", "tool_call_id": 5}], {}, "messages[0].tool_call_id"),
    ([{"role": "assistant", "content": "", "tool_calls": "x"}], {}, "messages[0].tool_calls"),
    ([{"role": "assistant", "content": "", "tool_calls": [5]}], {}, "messages[0].tool_calls[0]"),
    (
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {}}]}],
        {},
        "messages[0].tool_calls[0].function.name",
    ),
    (
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {1, 2}}}],
            }
        ],
        {},
        "messages[0].tool_calls[0].function.arguments",
    ),
    ([{"role": "assistant", "content": "", "thinking": [5]}], {}, "messages[0].thinking[0]"),
    (
        [{"role": "assistant", "content": "", "thinking": [{"content": 5}]}],
        {},
        "messages[0].thinking[0].content",
    ),
    ([HI], {"tools": [{"description": "no name"}]}, "tools[0].name"),
    ([HI], {"tools": [{"type": "function", "function": {"name": ""}}]}, "tools[0].name"),
    ([HI], {"tools": [{"name": 5}]}, "tools[0].name"),
    ([HI], {"tools": [{"name": "f", "parameters": "x"}]}, "tools[0].parameters"),
    ([HI], {"tools": [{"function": "f"}]}, "tools[0].function"),
    ([HI], {"tools": [42]}, "tools[0]"),
    ([HI], {"tools": {"name": "f"}}, "tools"),
    ([HI], {"tools": "f"}, "tools"),
    ([HI], {"temperature": -1}, "temperature"),
    ([HI], {"temperature": 3}, "temperature"),
    ([HI], {"temperature": math.nan}, "temperature"),
    ([HI], {"temperature": "hot"}, "temperature"),
    ([HI], {"temperature": True}, "temperature"),
    ([HI], {"max_tokens": -5}, "max_tokens"),
    ([HI], {"max_tokens": 0}, "max_tokens"),
    ([HI], {"max_tokens": 1.5}, "max_tokens"),
    ([HI], {"max_tokens": "10"}, "max_tokens"),
    ([HI], {"top_p": 1.5}, "top_p"),
    ([HI], {"top_p": -0.1}, "top_p"),
    ([HI], {"seed": "x"}, "seed"),
    ([HI], {"model": 123}, "model"),
    ([HI], {"stop_sequences": 5}, "stop_sequences"),
    ([HI], {"stop_sequences": ["ok", 1]}, "stop_sequences[1]"),
    ([HI], {"stop_sequences": [""]}, "stop_sequences[0]"),
    ([HI], {"response_format": "json"}, "response_format"),
    ([HI], {"response_format": {"type": "xml"}}, "response_format.type"),
    (
        [HI],
        {"response_format": {"type": "json_schema", "json_schema": "x"}},
        "response_format.json_schema",
    ),
    ([HI], {"thinking": {"budget_tokens": 5}}, "thinking"),
    ([HI], {"tool_choice": 5}, "tool_choice"),
    ([HI], {"frobnicate": object()}, "frobnicate"),
    ([HI], {"body": {"logit_bias": {1, 2}}}, "body"),
]
IDS = [f"{i}-{field}" for i, (_, _, field) in enumerate(BAD_CALLS)]


def _check_refusal(error: LLMError, field: str, server: OpenAIServer) -> None:
    assert isinstance(error, InvalidInputError), repr(error)
    assert isinstance(error, InvalidRequestError) and isinstance(error, ValueError)
    assert error.field == field
    assert error.message.startswith(f"{field}: ")
    assert error.code == "invalid_input" and not error.retryable
    assert error.provider == "openai" and error.model in ("gpt-test", None)
    assert server.requests == []  # refused before the network


@pytest.mark.parametrize(("messages", "kwargs", "field"), BAD_CALLS, ids=IDS)
async def test_complete_returns_err_naming_the_field(
    server: OpenAIServer, llm: AbstractLLMClient, messages: Any, kwargs: dict[str, Any], field: str
) -> None:
    result = await llm.complete(messages, **kwargs)
    assert isinstance(result, Err), result
    _check_refusal(result.error, field, server)


@pytest.mark.parametrize(("messages", "kwargs", "field"), BAD_CALLS, ids=IDS)
async def test_stream_raises_the_same_error_on_first_iteration(
    server: OpenAIServer, llm: AbstractLLMClient, messages: Any, kwargs: dict[str, Any], field: str
) -> None:
    stream = llm.stream_chat(messages, **kwargs)  # returned at once, as always
    with pytest.raises(InvalidInputError) as caught:
        async for _ in stream:
            pass
    _check_refusal(caught.value, field, server)
    result = await llm.stream_chat(messages, **kwargs).completion()
    assert isinstance(result, Err) and isinstance(result.error, InvalidInputError)


async def test_chat_refuses_a_prompt_that_is_no_prompt(
    server: OpenAIServer, llm: AbstractLLMClient
) -> None:
    result = await llm.chat(None)  # type: ignore[arg-type]
    assert isinstance(result, Err)
    _check_refusal(result.error, "messages", server)


# -- accepted, and sent as meant ------------------------------------------------------------


async def test_one_stop_string_is_one_stop_sequence(
    server: OpenAIServer, llm: AbstractLLMClient
) -> None:
    assert (await llm.complete([HI], stop_sequences="STOP")).is_ok()
    assert server.requests[-1].json["stop"] == ["STOP"]
    assert (await llm.stream_chat([HI], stop_sequences="STOP").completion()).is_ok()
    assert server.requests[-1].json["stop"] == ["STOP"]
    assert (await llm.complete([HI], stop_sequences=("a", "b"))).is_ok()
    assert server.requests[-1].json["stop"] == ["a", "b"]


async def test_options_at_their_bounds_are_sent(
    server: OpenAIServer, llm: AbstractLLMClient
) -> None:
    for options in (
        {"temperature": 0, "max_tokens": 1, "top_p": 0},
        {"temperature": 2.0, "top_p": 1, "seed": 7, "tool_choice": "auto"},
    ):
        result = await llm.complete([HI], tools=[{"name": "f"}], **options)
        assert result.is_ok(), result
        body = server.requests[-1].json
        for key, value in options.items():
            assert body.get(key, body.get("max_completion_tokens")) == value


async def test_messages_in_every_accepted_shape_reach_the_server(
    server: OpenAIServer, llm: AbstractLLMClient
) -> None:
    messages = [
        ChatMessage("system", "be brief"),  # type: ignore[arg-type]  # a role given as text
        ChatMessage(Role.USER, [TextPart("a"), ImageURLPart("https://x/y.png")]),  # a list
        {
            "role": Role.ASSISTANT,
            "content": None,
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}],
        },
        {"role": "tool", "content": "42", "tool_call_id": "c"},
        (m for m in ()),  # not a message: refused below
    ]
    result = await llm.complete(messages[:4])
    assert result.is_ok(), result
    sent = server.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[2]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    refused = await llm.complete(messages)
    assert isinstance(refused, Err) and refused.error.details["field"] == "messages[4]"


async def test_messages_may_come_from_any_iterable(
    server: OpenAIServer, llm: AbstractLLMClient
) -> None:
    assert (await llm.complete(m for m in [HI])).is_ok()
    assert server.requests[-1].json["messages"] == [HI]


# -- value objects built by hand ------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ChatMessage(Role.USER, 123), "ChatMessage.content"),  # type: ignore[arg-type]
        (lambda: ChatMessage(Role.USER, {"text": "x"}), "ChatMessage.content"),  # type: ignore[arg-type]
        (lambda: ChatMessage(Role.USER, [{"type": "text"}]), "ChatMessage.content[0]"),  # type: ignore[list-item]
        (lambda: ChatMessage("wizard", "x"), "ChatMessage.role"),  # type: ignore[arg-type]
        (lambda: ChatMessage(None, "x"), "ChatMessage.role"),  # type: ignore[arg-type]
        (lambda: ChatMessage(Role.USER, "x", name=5), "ChatMessage.name"),  # type: ignore[arg-type]
        (lambda: ChatMessage(Role.ASSISTANT, "", tool_calls=[5]), "ChatMessage.tool_calls[0]"),  # type: ignore[list-item]
        (lambda: ChatMessage.user(123), "ChatMessage.content"),  # type: ignore[arg-type]
        (lambda: TextPart(None), "TextPart.text"),  # type: ignore[arg-type]
        (lambda: ImageURLPart(5), "ImageURLPart.url"),  # type: ignore[arg-type]
        (lambda: ImageDataPart("not bytes"), "ImageDataPart.data"),  # type: ignore[arg-type]
        (lambda: DocumentPart(data="x"), "DocumentPart.data"),  # type: ignore[arg-type]
        (lambda: ToolDefinition(name=""), "ToolDefinition.name"),
        (lambda: ToolDefinition(name="f", parameters="x"), "ToolDefinition.parameters"),  # type: ignore[arg-type]
        (lambda: ToolCall.create("c", None, "{}"), "FunctionCall.name"),  # type: ignore[arg-type]
    ],
)
def test_value_objects_of_the_wrong_type_raise_type_error_naming_the_field(
    build: Any, field: str
) -> None:
    with pytest.raises(TypeError, match=f"^{re.escape(field)}: "):
        build()


def test_hand_built_messages_are_normalised() -> None:
    message = ChatMessage("user", [TextPart("a")])  # type: ignore[arg-type]
    assert message.role is Role.USER and message.content == (TextPart("a"),)
    assert ChatMessage.user(p for p in [TextPart("b")]).content == (TextPart("b"),)
    assert normalize_messages([message]) == (message,)


def test_normalize_messages_errors_are_value_errors_too() -> None:
    # Code that builds messages by hand (conversations, token counting) keeps catching
    # ``ValueError``.
    with pytest.raises(ValueError, match=r"^messages\[0\]\.content: expected a string"):
        normalize_messages([{"role": "user", "content": 1}])


# -- anything at all: Ok or Err, never another exception ------------------------------------

_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "text",
                    "name",
                    "tool_calls",
                    "function",
                    "arguments",
                    "image_url",
                    "url",
                    "data",
                    "thinking",
                    "tool_call_id",
                ]
            )
            | st.text(max_size=3),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)
_ROLE = st.sampled_from(["user", "assistant", "system", "tool"]) | _ANY
_MESSAGE = (
    st.fixed_dictionaries(
        {"role": _ROLE},
        optional={
            "content": _ANY,
            "name": _ANY,
            "tool_calls": _ANY,
            "tool_call_id": _ANY,
            "thinking": _ANY,
        },
    )
    | _ANY
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(_MESSAGE, max_size=3) | _ANY,
    options=st.fixed_dictionaries(
        {},
        optional={
            "temperature": _ANY,
            "max_tokens": _ANY,
            "top_p": _ANY,
            "seed": _ANY,
            "stop_sequences": _ANY,
            "tools": _ANY,
            "tool_choice": _ANY,
            "response_format": _ANY,
            "model": st.just("gpt-test") | _ANY,
            "user": _ANY,
        },
    ),
)
async def test_any_caller_input_gives_ok_or_err(
    llm: AbstractLLMClient, messages: Any, options: dict[str, Any]
) -> None:
    result = await llm.complete(messages, **options)
    assert isinstance(result, Ok | Err)
    streamed = await llm.stream_chat(messages, **options).completion()
    assert isinstance(streamed, Ok | Err)
    if isinstance(result, Err) and isinstance(result.error, InvalidInputError):
        assert isinstance(streamed, Err) and isinstance(streamed.error, InvalidInputError)
        assert streamed.error.field == result.error.field
