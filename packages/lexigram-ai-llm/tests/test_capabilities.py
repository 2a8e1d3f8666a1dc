"""Capabilities per model: the model table says what each model takes; the client refuses, before
sending anything, a request the table knows the model cannot take (unknown means allowed), and
the router skips routes whose model cannot take it. Over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, UnsupportedCapabilityError, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import ConfigurationError, InvalidRequestError
from lexigram.ai.llm.pricing import (
    CAPABILITIES,
    ModelInfo,
    ModelTable,
    lookup_model,
    model_table,
)
from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute
from lexigram.ai.llm.types import ResponseFormat
from lexigram.result import Err, Ok

IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ],
    }
]
PDF = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Summarise"},
            {"type": "document", "data": b"%PDF-1.4 tiny", "media_type": "application/pdf"},
        ],
    }
]
HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "name": "weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SCHEMA = ResponseFormat(
    type="json_schema", schema={"type": "object", "properties": {"a": {"type": "integer"}}}
)


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


def _client(server: OpenAIServer, model: str) -> AbstractLLMClient:
    config = ClientConfig(
        provider="openai",
        model=model,
        api_key="sk-test",
        api_base=server.url + "/v1",
        max_retries=0,
    )
    return create_llm_client(config)


def _refusal(result: Any, capability: str, model: str) -> UnsupportedCapabilityError:
    assert isinstance(result, Err), result
    error = result.error
    assert isinstance(error, UnsupportedCapabilityError)
    assert isinstance(error, InvalidRequestError)
    assert error.code == "unsupported_capability"
    assert error.capability == capability
    assert error.model == model
    assert model in str(error) and "no request was sent" in str(error)
    assert error.retryable is False
    return error


async def test_an_image_to_a_text_only_model_is_refused_before_any_request(
    server: OpenAIServer,
) -> None:
    async with _client(server, "gpt-3.5-turbo") as client:
        _refusal(await client.complete(IMAGE), "vision", "gpt-3.5-turbo")
        assert server.requests == []
        # The same client, a vision model named per call: sent.
        assert (await client.complete(IMAGE, model="gpt-4o")).is_ok()
        assert len(server.requests) == 1
        assert server.requests[0].json["model"] == "gpt-4o"


async def test_a_stream_with_an_image_to_a_text_only_model_raises_before_any_request(
    server: OpenAIServer,
) -> None:
    async with _client(server, "gpt-3.5-turbo") as client:
        with pytest.raises(UnsupportedCapabilityError) as raised:
            async for _ in client.stream_chat(IMAGE):
                pass
        assert raised.value.capability == "vision"
        assert server.requests == []


async def test_a_pdf_to_a_model_without_pdf_input_is_refused(server: OpenAIServer) -> None:
    async with _client(server, "gpt-3.5-turbo") as client:
        _refusal(await client.complete(PDF), "pdf", "gpt-3.5-turbo")
        assert server.requests == []


async def test_tools_to_a_model_without_function_calling_are_refused(
    server: OpenAIServer,
) -> None:
    async with _client(server, "o3-deep-research") as client:
        _refusal(await client.complete(HI, tools=[WEATHER]), "tools", "o3-deep-research")
        assert server.requests == []
    # A model the table does not know is allowed: unknown is not "cannot".
    assert lookup_model("my-own-finetune", "openai") is None
    async with _client(server, "my-own-finetune") as client:
        server.script(Reply(text="ok"))
        assert (await client.complete(HI, tools=[WEATHER])).is_ok()
        assert len(server.requests) == 1
        assert server.requests[0].json["tools"][0]["function"]["name"] == "weather"


async def test_a_json_schema_response_format_to_a_model_without_it_is_refused(
    server: OpenAIServer,
) -> None:
    async with _client(server, "gpt-4") as client:
        _refusal(await client.complete(HI, response_format=SCHEMA), "json_schema", "gpt-4")
        assert server.requests == []
        # Tools are fine on gpt-4, and a plain request goes through.
        server.script(Reply(text="ok"), Reply(text='{"a": 1}'))
        assert (await client.complete(HI, tools=[WEATHER])).is_ok()
        assert (await client.complete(HI, model="gpt-4o", response_format=SCHEMA)).is_ok()
        assert len(server.requests) == 2


async def test_a_router_skips_the_route_whose_model_cannot_take_the_request(
    server: OpenAIServer,
) -> None:
    route = {"provider": "openai", "base_url": server.url + "/v1", "api_key": "sk-route"}
    config = LLMConfig(
        providers=[
            ProviderRoute(name="text-only", model="gpt-3.5-turbo", priority=0, **route),
            ProviderRoute(name="vision", model="gpt-4o", priority=1, **route),
        ]
    )
    router = LLMRouter.from_config(config, default=ClientConfig(max_retries=0))
    try:
        result = await router.complete(IMAGE)
        assert isinstance(result, Ok), result
        assert [r.json["model"] for r in server.requests] == ["gpt-4o"]
        outcomes = [(a["route"], a["outcome"], a["reason"]) for a in result.value.attempts]
        assert outcomes[0] == ("text-only", "skipped", "unsupported_capability:vision")
        assert outcomes[-1][:2] == ("vision", "ok")
        # A text request still takes the first route.
        assert (await router.complete(HI)).is_ok()
        assert [r.json["model"] for r in server.requests] == ["gpt-4o", "gpt-3.5-turbo"]
    finally:
        await router.close()


async def test_a_router_none_of_whose_models_can_take_the_request_refuses_it(
    server: OpenAIServer,
) -> None:
    route = {"provider": "openai", "base_url": server.url + "/v1", "api_key": "sk-route"}
    config = LLMConfig(
        providers=[
            ProviderRoute(name="a", model="gpt-3.5-turbo", **route),
            ProviderRoute(name="b", model="gpt-4", **route),
        ]
    )
    router = LLMRouter.from_config(config, default=ClientConfig(max_retries=0))
    try:
        result = await router.complete(IMAGE)
        assert isinstance(result, Err) and isinstance(result.error, UnsupportedCapabilityError)
        assert result.error.capability == "vision"
        assert len(result.error.details["attempts"]) == 2
        assert server.requests == []
        with pytest.raises(UnsupportedCapabilityError):
            async for _ in router.stream_chat(IMAGE):
                pass
        assert server.requests == []
    finally:
        await router.close()


def test_the_table_carries_capabilities_with_their_date() -> None:
    table = model_table()
    assert table.capabilities_as_of == "2025-11-01"
    gpt4o = table.require("gpt-4o-2024-08-06", "openai")
    assert (gpt4o.vision, gpt4o.tools, gpt4o.json_schema, gpt4o.reasoning) == (
        True,
        True,
        True,
        False,
    )
    assert gpt4o.context_window == 128000 and gpt4o.max_output_tokens == 16384
    assert table.require("gemini-2.5-flash").audio is True
    assert table.require("gpt-3.5-turbo").lacks == (
        "vision",
        "audio",
        "pdf",
        "json_schema",
        "reasoning",
    )
    # Models without any flags know nothing: nothing refused.
    assert ModelInfo(name="x").lacks == ()
    assert ModelInfo(name="x").supports("vision") is None
    with pytest.raises(ValueError):
        ModelInfo(name="x").supports("telepathy")


def test_capabilities_round_trip_and_bad_values_are_refused() -> None:
    data = {
        "capabilities_as_of": "2026-01-01",
        "models": {
            "m": {
                "input": 1.0,
                "output": 2.0,
                "capabilities": {"vision": False, "tools": True},
                "quality": 3,
            }
        },
    }
    table = ModelTable.from_dict(data)
    info = table.require("m")
    assert (info.vision, info.tools, info.pdf, info.quality) == (False, True, None, 3)
    again = ModelTable.from_dict(table.to_dict())
    assert again.require("m") == info and again.capabilities_as_of == "2026-01-01"
    for bad in (
        {"capabilities": {"vision": "yes"}},
        {"capabilities": {"smell": True}},
        {"capabilities": ["vision"]},
        {"quality": 9},
    ):
        with pytest.raises(ConfigurationError):
            ModelTable.from_dict({"models": {"m": bad}})
    assert set(CAPABILITIES) == {"vision", "audio", "pdf", "tools", "json_schema", "reasoning"}
