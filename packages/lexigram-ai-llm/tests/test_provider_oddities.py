"""What real servers do that the API references do not say, typed the same way on every wire.

- llama.cpp's ``llama-server`` puts the HTTP status in an error's ``code`` (``"code": 400``)
  and names the failure in ``type`` (``exceed_context_size_error``), on its OpenAI and its
  Anthropic endpoints alike: the error's code is the type, and a context overflow is a
  ``TokenLimitError`` through either wire.
- An assistant tool-call message goes out with the content the caller gave it.
- A server that ignores Anthropic's forced structured-output tool and answers prose gives an
  ``ExtractionParseError``, not prose passed off as the structured answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.conformance import SECRET
from harness.openai_server import OpenAIServer
from harness.server import RecordedRequest, Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, JSONExtractor, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    ExtractionParseError,
    LLMAuthenticationError,
    LLMError,
    TokenLimitError,
)
from lexigram.ai.llm.types import ResponseFormat, ThinkingConfig
from lexigram.result import Err, Ok

HI = [{"role": "user", "content": "hi"}]


class LlamaServerErrors(OpenAIServer):
    """Error bodies exactly as llama.cpp's server sends them, on both of its wires."""

    routes = (("POST", "/v1/chat/completions"), ("POST", "/v1/messages"))

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, Any] = {}

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        return int(self.body["error"]["code"]), orjson.dumps(self.body)


OVERFLOW = {
    "error": {
        "code": 400,
        "message": "request (4476 tokens) exceeds the available context size (4096 tokens)",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 4476,
        "n_ctx": 4096,
    }
}
BAD_KEY = {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}


@pytest_asyncio.fixture
async def llama() -> AsyncIterator[LlamaServerErrors]:
    server = LlamaServerErrors()
    await server.start()
    yield server
    await server.stop()


def _client(provider: str, api_base: str, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": provider,
        "model": "test-model",
        "api_base": api_base,
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
        "timeout": 10.0,
        **overrides,
    }
    return create_llm_client(ClientConfig(**values))


@pytest.mark.parametrize(
    ("body", "expected", "code"),
    [
        (OVERFLOW, TokenLimitError, "exceed_context_size_error"),
        (BAD_KEY, LLMAuthenticationError, "authentication_error"),
    ],
)
@pytest.mark.parametrize("wire", ["openai_compatible", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_numeric_code_is_the_status_and_the_type_decides_on_every_wire(
    llama: LlamaServerErrors,
    body: dict[str, Any],
    expected: type[LLMError],
    code: str,
    wire: str,
    stream: bool,
) -> None:
    llama.body = body
    llama.script(Reply(error="invalid_request"))
    api_base = llama.url + "/v1" if wire == "openai_compatible" else llama.url
    async with _client(wire, api_base) as client:
        if stream:
            result = await client.stream_chat(HI).completion()
        else:
            result = await client.complete(HI)
    assert isinstance(result, Err), result
    error = result.error
    assert type(error) is expected, repr(error)
    assert error.code == code  # never "400" / "401"
    assert error.status == body["error"]["code"]
    assert error.provider_message == body["error"]["message"]


# -- tool-call content ---------------------------------------------------------------------


@pytest_asyncio.fixture
async def openai_server() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("content", ["", None, "Let me look that up."])
async def test_an_assistant_tool_call_message_keeps_the_content_it_was_given(
    openai_server: OpenAIServer, content: str | None
) -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    async with _client("openai", openai_server.url + "/v1") as client:
        assert (await client.complete(history)).is_ok()
    sent = openai_server.requests[0].json["messages"][1]
    assert "content" in sent
    assert sent["content"] == content
    assert sent["tool_calls"][0]["id"] == "call_1"


# -- Anthropic structured output when the server ignores the forced tool -------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
FORMAT = ResponseFormat.json_schema(PERSON, name="person")
PROSE = "Sure! John is 30 years old."


@pytest_asyncio.fixture
async def anthropic_server() -> AsyncIterator[AnthropicServer]:
    server = AnthropicServer()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("stream", [False, True])
async def test_prose_instead_of_the_forced_tool_is_an_extraction_parse_error(
    anthropic_server: AnthropicServer, stream: bool
) -> None:
    anthropic_server.script(Reply(text=PROSE, completion_tokens=9))
    async with _client("anthropic", anthropic_server.url) as client:
        if stream:
            result = await client.stream_chat(HI, response_format=FORMAT).completion()
        else:
            result = await client.complete(HI, response_format=FORMAT)
    sent = anthropic_server.requests[0].json
    assert sent["tool_choice"] == {"type": "tool", "name": "structured_output_person"}
    assert isinstance(result, Err), result
    error = result.error
    assert isinstance(error, ExtractionParseError)
    assert error.code == "structured_output_missing"
    assert error.raw_output == PROSE
    assert error.usage is not None and error.usage.completion_tokens == 9
    assert error.details["tool"] == "structured_output_person"
    assert not error.retryable


async def test_prose_is_a_valid_answer_when_thinking_only_offers_the_tool(
    anthropic_server: AnthropicServer,
) -> None:
    # With extended thinking the tool cannot be forced (tool_choice auto): prose is allowed.
    anthropic_server.script(Reply(text=PROSE))
    async with _client("anthropic", anthropic_server.url) as client:
        result = await client.complete(
            HI, response_format=FORMAT, thinking=ThinkingConfig(budget_tokens=1024)
        )
    assert anthropic_server.requests[0].json["tool_choice"] == {"type": "auto"}
    assert isinstance(result, Ok), result
    assert result.value.content == PROSE


async def test_the_extractor_re_asks_after_prose_instead_of_the_forced_tool(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.script(
        Reply(text=PROSE, prompt_tokens=20, completion_tokens=9),
        Reply(
            text="",
            tool_calls=[("toolu_2", "structured_output_person", {"name": "John", "age": 30})],
            finish="tool_calls",
            prompt_tokens=40,
            completion_tokens=10,
        ),
    )
    async with _client("anthropic", anthropic_server.url) as client:
        result = await JSONExtractor(client, schema_name="person").extract_detailed(
            "John is 30", schema=PERSON
        )
    assert isinstance(result, Ok), result
    assert result.value.value == {"name": "John", "age": 30}
    assert result.value.attempts == 2
    assert result.value.usage.prompt_tokens == 60  # the failed attempt's tokens count too
    second = anthropic_server.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == [{"type": "text", "text": PROSE}]
