"""Structured extraction: the JSON extractor, schema handling, and JSONExtractor /
StructuredExtractor against real clients over loopback HTTP (native modes, re-asks with the
validation error, summed usage, typed errors, streaming partial objects)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.conformance import SECRET
from harness.openai_server import OpenAIServer
from harness.server import FakeProviderServer, Reply
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from lexigram.ai.llm import ClientConfig, JSONExtractor, StructuredExtractor, create_llm_client
from lexigram.ai.llm.exceptions import (
    ExtractionMaxRetriesError,
    ExtractionParseError,
    ExtractionValidationError,
    LLMAuthenticationError,
)
from lexigram.ai.llm.module import StubLLMClient
from lexigram.ai.llm.structured import extract_json, parse_partial_json
from lexigram.ai.llm.structured._json import JSONExtractionError, strip_reasoning
from lexigram.ai.llm.structured._schema import relaxed_schema, strict_schema, wrap_root
from lexigram.result import Err, Ok

PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
GUIDE_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}


class Person(BaseModel):
    name: str
    age: int


# -- extract_json ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2, 3]\n", [1, 2, 3]),
        ('Sure! Here it is:\n```json\n{"a": "b"}\n```\nAnything else?', {"a": "b"}),
        ('```\n{"a": 2}\n```', {"a": 2}),
        ('<think>maybe {"a": 0}? no</think>{"a": 3}', {"a": 3}),
        ('<thinking>{"wrong": true}</thinking>\nAnswer: {"a": 4}', {"a": 4}),
        ('reasoning without an opening tag</think>{"a": 5}', {"a": 5}),
        (
            'The answer {is} here: {"text": "a } brace and a \\" quote {", "n": [1, {"m": 2}]} ok',
            {"text": 'a } brace and a " quote {', "n": [1, {"m": 2}]},
        ),
        ('It\'s John\'s: {"name": "John"}', {"name": "John"}),
        ('{"a": [1, 2,], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
        ('{"s": "keeps, ] commas"}', {"s": "keeps, ] commas"}),
        ('[not json] then {"ok": 1}', {"ok": 1}),
    ],
)
def test_extract_json_finds_the_value(text: str, expected: Any) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("<think>only thinking", "only reasoning"),
        ("no json here at all", "no JSON"),
        ('{"a": "cut off', "unterminated"),
        ("{this is [not] json}", "no valid JSON"),
    ],
)
def test_extract_json_says_why_it_failed(text: str, reason: str) -> None:
    with pytest.raises(JSONExtractionError, match=reason):
        extract_json(text)


def test_extract_json_prefers_objects_when_asked() -> None:
    text = 'Options [1, 2] and the answer {"x": 1}'
    assert extract_json(text) == [1, 2]
    assert extract_json(text, prefer="{") == {"x": 1}


def test_strip_reasoning() -> None:
    assert strip_reasoning("<think>a</think>b<THINK>c</THINK>d") == "bd"
    assert strip_reasoning("x <think>never closed") == "x "


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@example(value={"k": "<think>```"}, before="Here you go: ", after="")
@example(value={"</THINK>": {}}, before="Here you go: ", after="")
@example(value={"a": "<think>"}, before="", after=" Hope that helps!")
@given(
    value=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    before=st.sampled_from(["", "Here you go: ", "It's {not} json -> "]),
    after=st.sampled_from(["", " Hope that helps!", "\n}"]),
)
def test_extract_json_recovers_any_object_from_prose(value: Any, before: str, after: str) -> None:
    assert extract_json(before + orjson.dumps(value).decode() + after, prefer="{") == value


# -- partial JSON ----------------------------------------------------------------------------


def test_parse_partial_json_keeps_only_what_is_certain() -> None:
    assert parse_partial_json("Sure: ") is None
    assert parse_partial_json('{"na') == ({}, False)
    assert parse_partial_json('{"name": "Jo') == ({"name": "Jo"}, False)
    assert parse_partial_json('{"name": "John", "age": 3') == ({"name": "John"}, False)
    assert parse_partial_json('{"name": "John", "age": 30,') == ({"name": "John", "age": 30}, False)
    assert parse_partial_json('{"ok": tr') == ({}, False)
    assert parse_partial_json('{"ok": true') == ({"ok": True}, False)
    assert parse_partial_json('{"l": [1, 2, {"x": "y') == ({"l": [1, 2, {"x": "y"}]}, False)
    assert parse_partial_json('```json\n{"a": 1}\n```') == ({"a": 1}, True)
    assert parse_partial_json('{"s": "\\u00e9\\u00') == ({"s": "é"}, False)
    assert parse_partial_json("{oops}") is None


@settings(max_examples=100, deadline=None)
@example(value={"```": None})
@example(value={"a": "</think>{"})
@given(value=st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=5))
def test_every_prefix_parses_and_the_whole_is_complete(value: Any) -> None:
    text = orjson.dumps(value).decode()
    for end in range(1, len(text)):
        parse_partial_json(text[:end])  # never raises
    assert parse_partial_json(text) == (value, True)


# -- schema helpers --------------------------------------------------------------------------


def test_strict_schema_only_when_the_meaning_is_kept() -> None:
    strict = strict_schema(PERSON_SCHEMA)
    assert strict is not None
    assert strict["additionalProperties"] is False
    nested = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "number", "default": 1}},
                    "required": ["x"],
                },
            }
        },
        "required": ["items"],
    }
    made = strict_schema(nested)
    assert made is not None
    item = made["properties"]["items"]["items"]
    assert item["additionalProperties"] is False and "default" not in item
    assert strict_schema(GUIDE_SCHEMA) is None  # "name" is optional
    assert strict_schema({**PERSON_SCHEMA, "additionalProperties": True}) is None
    assert strict_schema({"type": "array", "items": {"type": "string"}}) is None
    assert (
        strict_schema(
            {
                **PERSON_SCHEMA,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "age": {"type": "integer"},
                },
            }
        )
        is None
    )
    assert "additionalProperties" not in PERSON_SCHEMA  # the caller's schema is untouched


def test_relaxed_and_wrapped_schemas() -> None:
    relaxed = relaxed_schema(
        {
            **PERSON_SCHEMA,
            "properties": {
                "tags": {
                    "type": "array",
                    "minItems": 2,
                    "items": {"type": "string", "minLength": 3},
                }
            },
        }
    )
    assert "required" not in relaxed
    assert "minItems" not in relaxed["properties"]["tags"]
    wrapped = wrap_root({"type": "array", "items": {"$ref": "#/$defs/P"}, "$defs": {"P": {}}})
    assert wrapped["required"] == ["value"] and "$defs" in wrapped
    assert "$defs" not in wrapped["properties"]["value"]


# -- against real clients --------------------------------------------------------------------


@pytest_asyncio.fixture
async def openai_server() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def anthropic_server() -> AsyncIterator[AnthropicServer]:
    server = AnthropicServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_client(provider: str, server: FakeProviderServer, **overrides: Any) -> Any:
    base = server.url + "/v1" if isinstance(server, OpenAIServer) else server.url
    values: dict[str, Any] = {
        "provider": provider,
        "model": "test-model",
        "api_base": base,
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


async def test_guide_schema_goes_out_as_native_non_strict_json_schema(
    openai_server: OpenAIServer,
) -> None:
    openai_server.script(Reply(text='{"name": "Ada"}'))
    async with make_client("openai", openai_server) as llm:
        result = await JSONExtractor(llm_client=llm).extract("Extract a name", schema=GUIDE_SCHEMA)
    assert result == Ok({"name": "Ada"})
    body = openai_server.requests[0].json
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": GUIDE_SCHEMA, "strict": False},
    }


async def test_strict_compatible_schema_is_sent_strict(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text='{"name": "Ada", "age": 36}'))
    async with make_client("openai", openai_server) as llm:
        result = await StructuredExtractor(llm).extract("Ada, 36", output_model=Person)
    assert result == Ok(Person(name="Ada", age=36))
    sent = openai_server.requests[0].json["response_format"]["json_schema"]
    assert sent["strict"] is True and sent["name"] == "Person"
    assert sent["schema"]["additionalProperties"] is False


async def test_reask_feeds_the_validation_error_back_and_sums_usage(
    openai_server: OpenAIServer,
) -> None:
    openai_server.script(
        Reply(
            text='Here: {"name": "John", "age": "thirty"}', prompt_tokens=50, completion_tokens=9
        ),
        Reply(text='{"name": "John", "age": 30}', prompt_tokens=80, completion_tokens=7),
    )
    async with make_client("openai", openai_server) as llm:
        result = await StructuredExtractor(llm).extract_detailed(
            "John is 30 years old", output_model=Person
        )
    assert isinstance(result, Ok)
    extraction = result.value
    assert extraction.value == Person(name="John", age=30)
    assert extraction.attempts == 2
    assert extraction.usage.prompt_tokens == 130
    assert extraction.usage.completion_tokens == 16
    assert extraction.usage.total_tokens == 146
    second = openai_server.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == 'Here: {"name": "John", "age": "thirty"}'
    assert "$.age" in second[3]["content"] and "integer" in second[3]["content"]


async def test_max_retries_error_carries_the_last_answer_and_all_usage(
    openai_server: OpenAIServer,
) -> None:
    openai_server.script(
        Reply(text="I cannot do that.", prompt_tokens=10, completion_tokens=5),
        Reply(text='{"name": 1}', prompt_tokens=20, completion_tokens=5),
        Reply(text='{"name": "x"}', prompt_tokens=30, completion_tokens=5),
    )
    async with make_client("openai", openai_server) as llm:
        result = await JSONExtractor(llm).extract("Who?", schema=PERSON_SCHEMA)
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, ExtractionMaxRetriesError)
    assert error.raw_output == '{"name": "x"}'
    assert error.usage.prompt_tokens == 60 and error.usage.completion_tokens == 15
    assert isinstance(error.last_error, ExtractionValidationError)  # type: ignore[attr-defined]
    assert error.details["attempts"] == 3 and len(error.details["errors"]) == 3
    assert "no parsable JSON" in error.details["errors"][0]
    assert error.provider == "openai"
    assert len(openai_server.requests) == 3


async def test_single_attempt_returns_the_specific_error(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text="no json", prompt_tokens=4, completion_tokens=2))
    async with make_client("openai", openai_server) as llm:
        parse = await JSONExtractor(llm, max_retries=0).extract("x", schema=PERSON_SCHEMA)
        openai_server.script(Reply(text='{"name": "a"}'))
        invalid = await JSONExtractor(llm).extract("x", schema=PERSON_SCHEMA, max_retries=0)
    assert isinstance(parse, Err) and isinstance(parse.error, ExtractionParseError)
    assert parse.error.raw_output == "no json" and parse.error.usage.total_tokens == 6
    assert isinstance(invalid, Err) and isinstance(invalid.error, ExtractionValidationError)
    assert "'age' is a required property" in invalid.error.message


async def test_provider_errors_pass_through(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(error="auth"))
    async with make_client("openai", openai_server) as llm:
        result = await JSONExtractor(llm).extract("x", schema=PERSON_SCHEMA)
    assert isinstance(result, Err) and isinstance(result.error, LLMAuthenticationError)
    assert len(openai_server.requests) == 1


async def test_json_mode_when_the_provider_has_no_schema_mode(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text='{"name": "Ann", "age": 5}'))
    async with make_client("deepseek", openai_server) as llm:  # json_object, no json_schema
        result = await JSONExtractor(llm).extract_detailed("Ann is 5", schema=PERSON_SCHEMA)
    assert isinstance(result, Ok) and result.value.mode == "json_object"
    body = openai_server.requests[0].json
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system"
    assert '"required":["name","age"]' in body["messages"][0]["content"]


async def test_prompt_mode_sends_no_response_format(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text='```json\n{"name": "Ann", "age": 5}\n```'))
    async with make_client("openai", openai_server) as llm:
        extractor = JSONExtractor(llm, mode="prompt")
        result = await extractor.extract(
            [
                {"role": "system", "content": "You are precise."},
                {"role": "user", "content": "Ann, 5"},
            ],
            schema=PERSON_SCHEMA,
        )
    assert result == Ok({"name": "Ann", "age": 5})
    body = openai_server.requests[0].json
    assert "response_format" not in body
    system = [m for m in body["messages"] if m["role"] == "system"]
    assert len(system) == 1 and system[0]["content"].startswith("You are precise.")


async def test_non_object_schemas_are_wrapped_for_native_modes(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text='{"value": ["a", "b"]}'))
    schema = {"type": "array", "items": {"type": "string"}}
    async with make_client("openai", openai_server) as llm:
        result = await JSONExtractor(llm).extract("letters", schema=schema)
    assert result == Ok(["a", "b"])
    sent = openai_server.requests[0].json["response_format"]["json_schema"]
    assert sent["strict"] is True and sent["schema"]["properties"]["value"] == schema


async def test_anthropic_forced_tool_use_and_a_valid_reask(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.script(
        Reply(
            text="",
            tool_calls=[("toolu_01", "structured_output_Person", {"name": "John", "age": "old"})],
            finish="tool_calls",
            prompt_tokens=40,
            completion_tokens=10,
        ),
        Reply(
            text="",
            tool_calls=[("toolu_02", "structured_output_Person", {"name": "John", "age": 30})],
            finish="tool_calls",
            prompt_tokens=60,
            completion_tokens=10,
        ),
    )
    async with make_client("anthropic", anthropic_server) as llm:
        result = await StructuredExtractor(llm).extract_detailed(
            "John is 30 years old", output_model=Person, max_tokens=200
        )
    assert isinstance(result, Ok), result
    assert result.value.value == Person(name="John", age=30)
    assert result.value.usage.prompt_tokens == 100
    first = anthropic_server.requests[0].json
    assert first["tool_choice"] == {"type": "tool", "name": "structured_output_Person"}
    second = anthropic_server.requests[1].json
    roles = [m["role"] for m in second["messages"]]
    assert roles == ["user", "assistant", "user"]
    # The bad answer goes back as text: no tool_use block is left without its tool_result.
    blocks = [b for m in second["messages"] if isinstance(m["content"], list) for b in m["content"]]
    assert not any(b.get("type") == "tool_use" for b in blocks)
    assert "structured_output_Person" in {t["name"] for t in second["tools"]}


async def test_an_empty_answer_is_not_sent_back() -> None:
    llm = StubLLMClient(["", '{"name": "Z", "age": 1}'])
    result = await JSONExtractor(llm).extract("Z is 1", schema=PERSON_SCHEMA)
    assert result == Ok({"name": "Z", "age": 1})
    roles = [m.role.value for m in llm.calls[1].messages]
    assert roles == ["system", "user"]
    assert "empty" in llm.calls[1].messages[-1].text


# -- streaming -------------------------------------------------------------------------------


async def test_stream_yields_validated_partials_then_the_whole(openai_server: OpenAIServer) -> None:
    openai_server.script(
        Reply(text='{"name": "Johnny Walker", "age": 42, "tags": ["a", "b"]}', chunk_chars=4)
    )
    schema = {
        **PERSON_SCHEMA,
        "properties": {
            **PERSON_SCHEMA["properties"],
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    async with make_client("openai", openai_server) as llm:
        items = [item async for item in JSONExtractor(llm).stream("...", schema=schema)]
    assert items[-1] == {"name": "Johnny Walker", "age": 42, "tags": ["a", "b"]}
    assert len(items) >= 4
    assert {"name": "Johnny"} in items or {"name": "John"} in items
    for earlier, later in itertools.pairwise(items):
        assert earlier != later
        assert set(earlier) <= set(later)
    assert openai_server.requests[0].json["stream"] is True


async def test_structured_stream_ends_with_the_model(openai_server: OpenAIServer) -> None:
    openai_server.script(Reply(text='{"name": "Eve", "age": 7}', chunk_chars=3))
    async with make_client("openai", openai_server) as llm:
        items = [i async for i in StructuredExtractor(llm).stream("Eve is 7", output_model=Person)]
    assert items[-1] == Person(name="Eve", age=7)
    assert all(getattr(i, "name", None) in (None, "E", "Ev", "Eve") for i in items[:-1])


async def test_stream_raises_the_typed_error_for_an_invalid_whole(
    openai_server: OpenAIServer,
) -> None:
    openai_server.script(Reply(text='{"name": "Eve", "age": "seven"}', prompt_tokens=9))
    async with make_client("openai", openai_server) as llm:
        stream = StructuredExtractor(llm).stream("Eve is 7", output_model=Person)
        with pytest.raises(ExtractionValidationError) as caught:
            async for _ in stream:
                pass
    assert caught.value.usage.prompt_tokens == 9
    assert caught.value.raw_output == '{"name": "Eve", "age": "seven"}'
