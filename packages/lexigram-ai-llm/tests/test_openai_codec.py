"""The OpenAI codec as pure functions: any body or event gives a Completion, chunks, or a typed
LLMError — never another exception (hypothesis)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.exceptions import LLMError
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.providers.openai import CODEC, PROFILES

CTX = CallContext("openai", "m", "http://127.0.0.1:1/v1", PROFILES["openai"], {})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "message": json_values,
                    "delta": json_values,
                    "finish_reason": json_values,
                    "index": json_values,
                },
            ),
            max_size=2,
        )
        | json_values,
        "usage": json_values,
        "error": json_values,
        "model": json_values,
    },
)


def _typed_or_value(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except LLMError as error:
        str(error)  # the message itself must render
        repr(error)


@settings(max_examples=300, deadline=None)
@given(payload=shaped | json_values)
def test_decode_never_raises_untyped(payload: Any) -> None:
    _typed_or_value(CODEC.decode, orjson.dumps(payload), {}, CTX)


@settings(max_examples=300, deadline=None)
@given(payload=shaped | json_values)
def test_stream_feed_never_raises_untyped(payload: Any) -> None:
    decoder = CODEC.stream_decoder(CTX)
    _typed_or_value(decoder.feed, SSEEvent(orjson.dumps(payload)))


@settings(max_examples=200, deadline=None)
@given(payload=json_values, status=st.sampled_from([400, 401, 403, 404, 408, 422, 429, 500, 503]))
def test_error_bodies_always_map_to_a_rendering_error(payload: Any, status: int) -> None:
    error = CODEC.map_error(status, {}, orjson.dumps(payload), CTX)
    assert isinstance(error, LLMError)
    assert error.status == status
    str(error)


def test_known_shapes_found_by_fuzzing() -> None:
    error = CODEC.map_error(400, {}, b'{"error": {"message": 5}}', CTX)
    assert "5" in str(error)
    for body in (b'{"error": 5}', b'{"choices": [{"message": 3}]}'):
        _typed_or_value(CODEC.decode, body, {}, CTX)
    _typed_or_value(CODEC.stream_decoder(CTX).feed, SSEEvent(b'{"error": [1]}'))


def _chunk(delta: dict[str, Any], finish: str | None = None) -> SSEEvent:
    return SSEEvent(orjson.dumps({"choices": [{"delta": delta, "finish_reason": finish}]}))


def test_text_held_for_a_think_tag_is_kept_when_the_host_sends_reasoning_itself() -> None:
    decoder = CODEC.stream_decoder(CTX)
    chunks = decoder.feed(_chunk({"content": "\n"}))  # held: it may precede a <think> tag
    chunks += decoder.feed(_chunk({"content": "Hi", "reasoning_content": "r"}))
    chunks += decoder.feed(_chunk({}, "stop"))
    chunks += decoder.feed(SSEEvent(b"[DONE]"))
    assert "".join(c.delta for c in chunks) == "\nHi"
    assert "".join(c.thinking_delta for c in chunks) == "r"


def test_newlines_after_think_in_their_own_chunk_are_dropped_as_in_the_whole_answer() -> None:
    pieces = ["<think>", "plan", "</think>", "\n\n", "Hi", "\nthere"]
    decoder = CODEC.stream_decoder(CTX)
    chunks = [c for piece in pieces for c in decoder.feed(_chunk({"content": piece}))]
    chunks += decoder.feed(_chunk({}, "stop"))
    chunks += decoder.feed(SSEEvent(b"[DONE]"))
    body = orjson.dumps(
        {"choices": [{"message": {"content": "".join(pieces)}, "finish_reason": "stop"}]}
    )
    whole = CODEC.decode(body, {}, CTX)
    assert whole.content == "Hi\nthere"
    assert "".join(c.delta for c in chunks) == whole.content
    assert "".join(c.thinking_delta for c in chunks) == "plan"
