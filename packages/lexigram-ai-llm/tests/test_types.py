"""Value types: tool definitions from schemas, models and functions; messages as dicts; the
serialised Completion round trip."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from lexigram.ai.llm.types import (
    ChatMessage,
    Completion,
    DocumentPart,
    ImageDataPart,
    ImageURLPart,
    Role,
    TextPart,
    ThinkingBlock,
    ThinkingResult,
    ToolCall,
    ToolDefinition,
    Usage,
    normalize_messages,
)


def get_weather(city: str, unit: Literal["c", "f"] = "c", days: list[int] | None = None) -> str:
    """Get the weather for a city.

    Args:
        city: The city to look up.
        unit: Temperature unit.
    """
    return city


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int = Field(ge=0)


def test_tool_from_function_uses_types_and_docstring() -> None:
    tool = ToolDefinition.from_function(get_weather)
    assert tool.name == "get_weather"
    assert tool.description == "Get the weather for a city."
    props = tool.parameters["properties"]
    assert props["city"] == {"type": "string", "description": "The city to look up."}
    assert props["unit"] == {"enum": ["c", "f"], "description": "Temperature unit."}
    assert props["days"] == {"type": "array", "items": {"type": "integer"}}
    assert tool.parameters["required"] == ["city"]


def test_tool_from_model_and_schema_and_openai_dict() -> None:
    tool = ToolDefinition.from_model(Person)
    assert tool.name == "Person" and tool.description == "A person mentioned in the text."
    assert set(tool.parameters["properties"]) == {"name", "age"}
    schema_tool = ToolDefinition.from_schema("f", {"type": "object", "properties": {}}, "does f")
    assert schema_tool.description == "does f"
    coerced = ToolDefinition.coerce(
        {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}
    )
    assert coerced.name == "g"
    assert ToolDefinition.coerce(get_weather).name == "get_weather"
    assert ToolDefinition.coerce(Person).name == "Person"
    with pytest.raises(TypeError):
        ToolDefinition.coerce(42)


def test_messages_from_dicts_and_back() -> None:
    raw = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                {"type": "image", "data": "aGVsbG8=", "media_type": "image/jpeg"},
                {
                    "type": "document",
                    "data": "JVBERi0=",
                    "media_type": "application/pdf",
                    "name": "a.pdf",
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
            ],
            "thinking": [{"content": "hmm", "signature": "sig"}],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "42"},
    ]
    messages = normalize_messages(raw)
    assert messages[0] == ChatMessage(Role.SYSTEM, "be brief")
    parts = messages[1].content
    assert isinstance(parts, tuple)
    assert parts[0] == TextPart("what is this?")
    assert parts[1] == ImageURLPart("https://x/y.png", "low")
    assert parts[2] == ImageDataPart(b"hello", "image/jpeg")
    assert isinstance(parts[3], DocumentPart) and parts[3].data == b"%PDF-"
    assert messages[2].tool_calls[0].parsed_arguments() == {"a": 1}
    assert messages[2].thinking == (ThinkingBlock("hmm", "sig"),)
    assert normalize_messages([m.to_dict() for m in messages]) == messages


def test_bad_messages_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="no 'role'"):
        normalize_messages([{"content": "x"}])
    with pytest.raises(ValueError, match="unknown content part"):
        normalize_messages([{"role": "user", "content": [{"type": "video"}]}])


def test_completion_round_trips_through_its_dict() -> None:
    completion = Completion(
        content="hi",
        model="m",
        provider="p",
        finish_reason="tool_calls",
        raw_finish_reason="tool_use",
        tool_calls=(ToolCall.create("c1", "f", {"x": 1}),),
        usage=Usage.of(3, 4, cached_tokens=1, reasoning_tokens=2),
        thinking=ThinkingResult.from_blocks(
            (ThinkingBlock("t", "s"), ThinkingBlock("", None, True, "enc")), 2
        ),
        cost=0.001,
        id="id1",
    )
    assert Completion.from_dict(completion.to_dict()) == completion
    message = completion.to_message()
    assert message.role is Role.ASSISTANT and message.thinking == completion.thinking.blocks  # type: ignore[union-attr]


def test_usage_adds_up() -> None:
    assert Usage.of(1, 2) + Usage.of(3, 4, reasoning_tokens=1) == Usage(4, 6, 10, 0, 1, 0)


def test_plain_dicts_and_richer_dicts_normalise_the_same_way() -> None:
    fast = normalize_messages([{"role": "user", "content": "hi"}])
    slow = normalize_messages([{"role": "user", "content": "hi", "name": None}])
    assert fast == slow == (ChatMessage(Role.USER, "hi"),)
    with pytest.raises(ValueError, match="unknown message role"):
        normalize_messages([{"role": "robot", "content": "hi"}])


def test_with_cost_changes_only_the_cost() -> None:
    completion = Completion(content="a", model="m", provider="p", usage=Usage.of(1, 2), id="x")
    priced = completion.with_cost(0.5)
    assert priced.cost == 0.5
    assert Completion.from_dict({**priced.to_dict(), "cost": None}) == completion


def test_request_repr_never_shows_extra_headers() -> None:
    from lexigram.ai.llm.types import ChatRequest

    request = ChatRequest(
        messages=(ChatMessage(Role.USER, "x"),),
        model="m",
        extra={"headers": {"Authorization": "Bearer sk-secret-123"}},
    )
    assert "sk-secret-123" not in repr(request)


def test_a_failed_tool_result_keeps_its_error_flag() -> None:
    failed = ChatMessage.tool("Error: no such city", tool_call_id="call_1", is_error=True)
    assert failed.to_dict()["is_error"] is True
    assert ChatMessage.from_dict(failed.to_dict()) == failed
    fine = ChatMessage.tool("21 C", tool_call_id="call_2")
    assert "is_error" not in fine.to_dict()  # the dict (and the response-cache key) as before
    assert ChatMessage.from_dict(fine.to_dict()) == fine
    with pytest.raises(TypeError, match="only a tool result can be an error"):
        ChatMessage(Role.USER, "hi", is_error=True)
    with pytest.raises(TypeError, match="is_error: expected a bool"):
        ChatMessage(Role.TOOL, "x", tool_call_id="c", is_error="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is_error"):
        ChatMessage.from_dict({"role": "tool", "tool_call_id": "c", "content": "", "is_error": 1})
