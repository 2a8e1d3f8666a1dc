"""``run_tools`` / ``stream_tools`` over real HTTP on loopback, for every wire family with tools.

Each test builds a client the way a user would, scripts the family's loopback server to answer
with tool calls, and asserts on the ``ToolRun`` and on what went back over the wire.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.bedrock_server import SECRET_KEY, BedrockServer, use_test_credentials
from harness.cohere_server import CohereServer
from harness.conformance import SECRET, Family
from harness.gemini_server import GeminiServer
from harness.ollama_server import OllamaServer
from harness.openai_server import OpenAIServer
from harness.responses_server import ResponsesServer
from harness.server import FakeProviderServer, Reply
from pydantic import BaseModel, SecretStr

from lexigram.ai.llm import (
    ClientConfig,
    ConversationConfig,
    ConversationManager,
    MaxStepsExceededError,
    Tool,
    ToolDefinition,
    ToolError,
    ToolFailureLimitError,
    ToolResult,
    ToolRun,
    ToolStep,
    create_llm_client,
    run_tools,
    stream_tools,
)
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import LLMError, LLMRateLimitError
from lexigram.ai.llm.types import StreamChunk, Usage
from lexigram.result import Err

FAMILIES: dict[str, Family] = {
    "openai": Family("openai", OpenAIServer, lambda s: s.url + "/v1", model="gpt-4o-mini"),
    "openai_responses": Family(
        "openai_responses", ResponsesServer, lambda s: s.url + "/v1", model="gpt-5-mini"
    ),
    "anthropic": Family("anthropic", AnthropicServer, lambda s: s.url, model="claude-sonnet-5"),
    "gemini": Family("gemini", GeminiServer, lambda s: s.url, model="gemini-2.5-flash"),
    "bedrock": Family(
        "bedrock",
        BedrockServer,
        lambda s: s.url,
        model="anthropic.claude-3-5-sonnet-20240620-v1:0",
        config={"api_key": None},
        secret=SECRET_KEY,
    ),
    "cohere": Family("cohere", CohereServer, lambda s: s.url, model="command-a-03-2025"),
    "ollama": Family("ollama", OllamaServer, lambda s: s.url, model="llama3.2"),
}
# Families whose wire carries tool arguments as JSON text, so a model can send invalid JSON.
# The others send an object (Anthropic, Gemini, Bedrock and Ollama answers), except when
# streamed (Anthropic and Bedrock stream the arguments as text fragments).
JSON_TEXT_ARGUMENTS = {"openai", "openai_responses", "cohere"}
STREAMED_JSON_TEXT_ARGUMENTS = {"openai", "openai_responses", "cohere", "anthropic", "bedrock"}

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(params=list(FAMILIES))
def family(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Family:
    name = request.param
    if name == "bedrock":
        use_test_credentials(monkeypatch)
    return FAMILIES[name]


@pytest_asyncio.fixture
async def server(family: Family) -> AsyncIterator[FakeProviderServer]:
    server = family.server_cls()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_client(family: Family, server: FakeProviderServer) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": family.name,
        "model": family.model,
        "api_base": family.api_base(server),
        "api_key": SecretStr(SECRET),
        "max_retries": 0,
        "timeout": 10.0,
        "stream_idle_timeout": 5.0,
    }
    values.update(family.config)
    return create_llm_client(ClientConfig(**values))


@pytest_asyncio.fixture
async def llm(family: Family, server: FakeProviderServer) -> AsyncIterator[AbstractLLMClient]:
    client = make_client(family, server)
    try:
        yield client
    finally:
        await client.close()


# -- tools ---------------------------------------------------------------------------------


def get_weather(city: str, unit: str = "c") -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: The city name.
        unit: "c" or "f".
    """
    return {"city": city, "temp": 21 if unit == "c" else 70, "unit": unit}


WEATHER_JSON = '{"city":"Paris","temp":21,"unit":"c"}'


def _calls(*calls: tuple[str, str, Any]) -> Reply:
    return Reply(text="", finish="tool_calls", tool_calls=list(calls), prompt_tokens=20)


def _holds(value: Any, content: str) -> bool:
    """Whether a request body holds the tool result ``content``: as a string, or (wires that
    send results as JSON objects) as the object it encodes."""
    try:
        decoded = orjson.loads(content)
    except orjson.JSONDecodeError:
        decoded = None
    stack = [value]
    while stack:
        node = stack.pop()
        if node == content or (
            decoded is not None and isinstance(decoded, dict) and node == decoded
        ):
            return True
        if isinstance(node, str) and content in node:
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


# -- the two-step weather example ----------------------------------------------------------


async def test_two_step_weather(server: FakeProviderServer, llm: AbstractLLMClient) -> None:
    server.script(
        _calls(("call_1", "get_weather", {"city": "Paris"})),
        Reply(text="It is 21 degrees in Paris.", prompt_tokens=40, completion_tokens=9),
    )
    seen: list[ToolStep] = []
    result = await run_tools(llm, ASK, tools=[get_weather], on_step=seen.append)
    run = result.unwrap()
    assert isinstance(run, ToolRun)
    assert run.content == "It is 21 degrees in Paris."
    assert [len(s.results) for s in run.steps] == [1, 0]
    assert seen == list(run.steps)
    (weather,) = run.steps[0].results
    assert weather.ok and weather.value == {"city": "Paris", "temp": 21, "unit": "c"}
    assert weather.content == WEATHER_JSON  # serialised once, compact JSON
    assert weather.arguments == {"city": "Paris"}
    # Usage and cost are summed over the two model calls.
    assert run.usage == run.steps[0].completion.usage + run.steps[1].completion.usage
    assert run.usage.prompt_tokens == 60
    assert run.usage.completion_tokens == 7 + 9
    costs = [s.completion.cost for s in run.steps]
    if any(c is not None for c in costs):
        assert run.cost == pytest.approx(sum(c or 0.0 for c in costs))
    else:
        assert run.cost is None
    # The history holds the input, the call, its result and the answer, and can be resent.
    roles = [m.role.value for m in run.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert run.messages[2].tool_call_id == run.steps[0].tool_calls[0].id
    # The second request carried the tool's definition and its result.
    assert len(server.requests) == 2
    second = server.requests[1].json
    assert _holds(second, WEATHER_JSON)
    assert b"get_weather" in server.requests[0].body
    assert b"The city name." in server.requests[0].body  # docstring became the schema


async def test_two_parallel_calls_run_concurrently(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    started = {"Paris": asyncio.Event(), "Rome": asyncio.Event()}

    async def city_weather(city: str) -> str:
        """Weather for a city."""
        started[city].set()
        other = "Rome" if city == "Paris" else "Paris"
        # Each call waits until the other one has started: run one after the other, the
        # first would wait in vain and fail with a timeout error instead.
        await asyncio.wait_for(started[other].wait(), 5)
        return f"sunny in {city}"

    server.script(
        _calls(
            ("call_1", "city_weather", {"city": "Paris"}),
            ("call_2", "city_weather", {"city": "Rome"}),
        ),
        Reply(text="Both sunny."),
    )
    run = (await run_tools(llm, ASK, tools=[city_weather])).unwrap()
    results = run.steps[0].results
    assert [(r.call.id, r.content, r.error) for r in results] == [
        (run.steps[0].tool_calls[0].id, "sunny in Paris", None),
        (run.steps[0].tool_calls[1].id, "sunny in Rome", None),
    ]
    body = server.requests[1].json
    assert _holds(body, "sunny in Paris") and _holds(body, "sunny in Rome")
    assert run.content == "Both sunny."


async def test_parallel_false_runs_calls_in_order(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    order: list[str] = []

    async def record(name: str) -> str:
        """Record a name."""
        order.append(f"start {name}")
        await asyncio.sleep(0)
        order.append(f"end {name}")
        return name

    server.script(
        _calls(("call_1", "record", {"name": "a"}), ("call_2", "record", {"name": "b"})),
        Reply(text="done"),
    )
    (await run_tools(llm, ASK, tools=[record], parallel=False)).unwrap()
    assert order == ["start a", "end a", "start b", "end b"]


async def test_raising_tool_is_sent_back_and_the_loop_continues(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    def flaky_weather(city: str) -> str:
        """Weather for a city."""
        raise RuntimeError("station offline")

    server.script(
        _calls(("call_1", "flaky_weather", {"city": "Paris"})),
        Reply(text="The weather service is down."),
    )
    run = (await run_tools(llm, ASK, tools=[flaky_weather])).unwrap()
    (failed,) = run.steps[0].results
    assert not failed.ok and failed.error_kind == "raised"
    assert failed.content == "Error: flaky_weather raised RuntimeError: station offline"
    assert _holds(server.requests[1].json, failed.content)
    assert run.content == "The weather service is down."


def _error_flags(family: str, body: Any) -> dict[str, bool]:
    """How each tool result in a request body is marked (by call id, or tool name on Gemini),
    on the wires that can say a tool failed: Anthropic's ``is_error``, Bedrock's ``status``,
    Gemini's ``error`` response key."""
    stack, flags = [body], {}
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if family == "anthropic" and node.get("type") == "tool_result":
                flags[node["tool_use_id"]] = node.get("is_error", False) is True
            elif family == "bedrock" and isinstance(node.get("toolResult"), dict):
                result = node["toolResult"]
                flags[result["toolUseId"]] = result.get("status") == "error"
            elif family == "gemini" and isinstance(node.get("functionResponse"), dict):
                response = node["functionResponse"]
                flags[response["name"]] = set(response["response"]) == {"error"}
            stack.extend(node.values())
    return flags


async def test_a_failed_tool_is_flagged_where_the_wire_can_say_so(
    family: Family, server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    def flaky_weather(city: str) -> str:
        """Weather for a city."""
        raise RuntimeError("station offline")

    server.script(
        _calls(
            ("call_1", "flaky_weather", {"city": "Paris"}),
            ("call_2", "get_weather", {"city": "Paris"}),
        ),
        Reply(text="Half of it worked."),
    )
    run = (await run_tools(llm, ASK, tools=[flaky_weather, get_weather])).unwrap()
    failed, fine = run.steps[0].results
    assert (failed.ok, fine.ok) == (False, True)
    assert failed.to_message().is_error and not fine.to_message().is_error
    flags = _error_flags(family.name, server.requests[1].json)
    if family.name == "gemini":
        assert flags == {"flaky_weather": True, "get_weather": False}
    elif family.name in {"anthropic", "bedrock"}:
        assert flags == {"call_1": True, "call_2": False}
    else:
        assert flags == {}  # no flag on this wire: the "Error: ..." text says it
    assert _holds(server.requests[1].json, failed.content)


async def test_tool_error_message_is_sent_as_is(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    def lookup(city: str) -> str:
        """Look a city up."""
        raise ToolError(f"unknown city {city}; try a capital")

    server.script(_calls(("call_1", "lookup", {"city": "Atlantis"})), Reply(text="ok"))
    run = (await run_tools(llm, ASK, tools=[lookup])).unwrap()
    assert run.steps[0].results[0].content == "Error: unknown city Atlantis; try a capital"


async def test_invalid_arguments_are_sent_back(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    calls: list[str] = []

    def weather(city: str, days: int = 1) -> str:
        """Forecast."""
        calls.append(city)
        return "sunny"

    server.script(
        _calls(("call_1", "weather", {"city": "Paris", "days": "many"})),
        _calls(("call_2", "weather", {"city": "Paris", "days": 2})),
        Reply(text="Sunny for two days."),
    )
    run = (await run_tools(llm, ASK, tools=[weather])).unwrap()
    bad = run.steps[0].results[0]
    assert bad.error_kind == "invalid_arguments"
    assert bad.content.startswith("Error: invalid arguments for weather: $.days:")
    assert calls == ["Paris"]  # the handler never saw the bad call
    assert _holds(server.requests[1].json, bad.content)
    assert run.steps[1].results[0].content == "sunny"
    assert run.content == "Sunny for two days."


async def test_invalid_json_arguments_are_sent_back(
    family: Family, server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    if family.name not in JSON_TEXT_ARGUMENTS:
        pytest.skip(f"{family.name} answers carry tool arguments as a JSON object")
    server.script(
        _calls(("call_1", "get_weather", '{"city": "Par')),
        Reply(text="Let me try again later."),
    )
    run = (await run_tools(llm, ASK, tools=[get_weather])).unwrap()
    bad = run.steps[0].results[0]
    assert bad.error_kind == "invalid_arguments"
    assert bad.content.startswith("Error: the arguments are not a JSON object")
    assert _holds(server.requests[1].json, bad.content)


async def test_unknown_tool_is_sent_back(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(_calls(("call_1", "get_time", {})), Reply(text="no clock"))
    run = (await run_tools(llm, ASK, tools=[get_weather])).unwrap()
    assert run.steps[0].results[0].content == (
        "Error: there is no tool named 'get_time' (tools: get_weather)"
    )


async def test_consecutive_failures_stop_the_loop(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    def broken(city: str) -> str:
        """Always fails."""
        raise ValueError("nope")

    server.script(_calls(("call_1", "broken", {"city": "Paris"})))  # repeats forever
    result = await run_tools(llm, ASK, tools=[broken], max_tool_errors=2)
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, ToolFailureLimitError)
    assert len(error.run.steps) == 2 and len(server.requests) == 2
    assert "broken raised ValueError: nope" in str(error)


async def test_step_limit_is_a_typed_error_with_the_partial_run(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})))  # never stops asking
    result = await run_tools(llm, ASK, tools=[get_weather], max_steps=3)
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, MaxStepsExceededError) and isinstance(error, LLMError)
    assert error.code == "max_steps_exceeded"
    run = error.run
    assert len(run.steps) == 3 and len(server.requests) == 3
    assert all(step.results[0].ok for step in run.steps)
    # The last tools ran, so the history ends with their result and can be continued.
    assert run.messages[-1].role.value == "tool"
    assert run.usage.prompt_tokens == 60
    server.script(Reply(text="Finally: 21 degrees."))
    resumed = (await run_tools(llm, run.messages, tools=[get_weather])).unwrap()
    assert resumed.content == "Finally: 21 degrees."


async def test_approve_can_refuse_a_call(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    ran: list[str] = []

    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return "deleted"

    async def approve(call: Any) -> bool | str:
        return "Deleting files is not allowed." if call.name == "delete_file" else True

    server.script(
        _calls(
            ("call_1", "delete_file", {"path": "/etc/passwd"}),
            ("call_2", "get_weather", {"city": "Paris"}),
        ),
        Reply(text="I may not delete files."),
    )
    run = (await run_tools(llm, ASK, tools=[delete_file, get_weather], approve=approve)).unwrap()
    refused, allowed = run.steps[0].results
    assert ran == []
    assert refused.error_kind == "refused" and refused.content == "Deleting files is not allowed."
    assert allowed.ok and allowed.content == WEATHER_JSON
    assert _holds(server.requests[1].json, "Deleting files is not allowed.")


async def test_cancellation_stops_running_tools_and_leaves_no_task(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def slow(city: str) -> str:
        """Takes forever."""
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(city)
            raise
        return "never"

    server.script(
        _calls(("call_1", "slow", {"city": "Paris"}), ("call_2", "slow", {"city": "Rome"})),
        Reply(text="unreachable"),
    )
    before = asyncio.all_tasks()
    task = asyncio.create_task(run_tools(llm, ASK, tools=[slow]))
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0)  # let the second call start too
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["Paris", "Rome"]
    assert _our_pending_tasks(before) == []
    assert len(server.requests) == 1  # nothing was sent after the cancellation


def _our_pending_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks started since ``before`` that are still pending, except the loopback server's
    own (aiohttp keeps one per open connection)."""
    leftover = []
    for task in asyncio.all_tasks() - before:
        if task.done() or task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and "aiohttp" in code.co_filename:
            continue
        leftover.append(task)
    return leftover


async def test_provider_error_mid_loop_keeps_the_partial_run(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})), Reply(error="rate_limit"))
    result = await run_tools(llm, ASK, tools=[get_weather])
    assert isinstance(result, Err)
    assert isinstance(result.error, LLMRateLimitError)
    partial = result.error.details["tool_run"]
    assert isinstance(partial, ToolRun) and partial.steps[0].results[0].ok


@pytest.mark.parametrize("family", ["openai"], indirect=True)
async def test_max_concurrency_bounds_parallel_calls(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    running: list[int] = [0]
    peak: list[int] = [0]

    async def work(n: int) -> int:
        """Some work."""
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        for _ in range(5):
            await asyncio.sleep(0)  # give the other calls every chance to start
        running[0] -= 1
        return n

    server.script(
        _calls(*[(f"c{i}", "work", {"n": i}) for i in range(6)]),
        Reply(text="done"),
    )
    run = (await run_tools(llm, ASK, tools=[work], max_concurrency=2)).unwrap()
    assert [r.content for r in run.results] == ["0", "1", "2", "3", "4", "5"]
    assert peak[0] == 2


@pytest.mark.parametrize("family", ["openai"], indirect=True)
async def test_tool_timeout(server: FakeProviderServer, llm: AbstractLLMClient) -> None:
    async def hangs(city: str) -> str:
        """Never answers."""
        await asyncio.sleep(3600)
        return "never"

    def times_out_itself(city: str) -> str:
        """Raises its own TimeoutError."""
        raise TimeoutError("upstream took too long")

    server.script(
        _calls(("c1", "hangs", {"city": "Paris"}), ("c2", "times_out_itself", {"city": "Rome"})),
        Reply(text="Both failed."),
    )
    run = (await run_tools(llm, ASK, tools=[hangs, times_out_itself], tool_timeout=0.05)).unwrap()
    hung, own = run.results
    assert hung.error_kind == "timeout" and hung.content == (
        "Error: hangs did not finish within 0.05s"
    )
    assert own.error_kind == "raised"
    server.script(_calls(("c2", "times_out_itself", {"city": "Rome"})), Reply(text="ok"))
    run = (await run_tools(llm, ASK, tools=[times_out_itself])).unwrap()
    assert run.results[0].content == (
        "Error: times_out_itself raised TimeoutError: upstream took too long"
    )


# -- tool kinds ----------------------------------------------------------------------------


class Forecast(BaseModel):
    city: str
    days: int


async def test_tool_kinds(server: FakeProviderServer, llm: AbstractLLMClient) -> None:
    """A sync function (in a worker thread), an async one, a ``Tool`` with a hand-written
    schema, pydantic model arguments and a non-string result serialised once."""
    threads: list[int] = []

    def sync_tool(city: str) -> list[str]:
        """Sync."""
        threads.append(threading.get_ident())
        return [city, city]

    async def model_tool(forecast: Forecast) -> Forecast:
        """Takes and returns a model."""
        assert isinstance(forecast, Forecast)
        return forecast

    handwritten = Tool(
        ToolDefinition.from_schema(
            "shout", {"type": "object", "properties": {"text": {"type": "string"}}}, "Shout."
        ),
        lambda text: text.upper(),
    )
    server.script(
        _calls(
            ("call_1", "sync_tool", {"city": "Oslo"}),
            ("call_2", "model_tool", {"forecast": {"city": "Oslo", "days": 3}}),
            ("call_3", "shout", {"text": "hi"}),
        ),
        Reply(text="done"),
    )
    run = (await run_tools(llm, ASK, tools=[sync_tool, model_tool, handwritten])).unwrap()
    contents = [r.content for r in run.steps[0].results]
    assert contents == ['["Oslo","Oslo"]', '{"city":"Oslo","days":3}', "HI"]
    assert threads and threads[0] != threading.get_ident()


def test_bad_tool_lists_raise_at_once() -> None:
    with pytest.raises(TypeError, match="without a handler"):
        _ = asyncio.run(run_tools(None, ASK, tools=[ToolDefinition("x")]))
    with pytest.raises(ValueError, match="two tools are named 'get_weather'"):
        _ = asyncio.run(run_tools(None, ASK, tools=[get_weather, get_weather]))
    with pytest.raises(ValueError, match="max_steps"):
        _ = asyncio.run(run_tools(None, ASK, tools=[get_weather], max_steps=0))


async def test_tool_choice_applies_to_the_first_step_only(
    family: Family, server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    if family.name == "ollama":
        pytest.skip("Ollama cannot force a tool call")
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})), Reply(text="21"))
    (await run_tools(llm, ASK, tools=[get_weather], tool_choice="required")).unwrap()
    first, second = (r.body for r in server.requests)
    assert first != second
    forced = {b"tool_choice", b"toolChoice", b"functionCallingConfig"}
    assert any(key in first for key in forced)
    assert not any(key in second for key in forced) or b"REQUIRED" not in second


# -- provider specifics --------------------------------------------------------------------


@pytest.mark.parametrize("family", ["anthropic"], indirect=True)
async def test_anthropic_thinking_blocks_stay_in_place(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(
        Reply(
            text="",
            thinking="The user wants the weather; call the tool.",
            thinking_signature="sig-thinking-1",
            finish="tool_calls",
            tool_calls=[("toolu_01", "get_weather", {"city": "Paris"})],
        ),
        Reply(text="21 degrees."),
    )
    run = (await run_tools(llm, ASK, tools=[get_weather])).unwrap()
    assert run.content == "21 degrees."
    assistant, tool_turn = server.requests[1].json["messages"][1:3]
    assert assistant["role"] == "assistant"
    assert [b["type"] for b in assistant["content"]] == ["thinking", "tool_use"]
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants the weather; call the tool.",
        "signature": "sig-thinking-1",
    }
    assert tool_turn["role"] == "user"
    assert tool_turn["content"][0]["type"] == "tool_result"
    assert tool_turn["content"][0]["tool_use_id"] == "toolu_01"


@pytest.mark.parametrize("family", ["gemini"], indirect=True)
async def test_gemini_thought_signature_goes_back_on_the_call(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(
        Reply(
            text="",
            thinking_signature="sig-gemini-1",
            finish="tool_calls",
            tool_calls=[("", "get_weather", {"city": "Paris"})],
        ),
        Reply(text="21 degrees."),
    )
    run = (await run_tools(llm, ASK, tools=[get_weather])).unwrap()
    assert run.content == "21 degrees."
    contents = server.requests[1].json["contents"]
    model_turn = contents[1]
    assert model_turn["role"] == "model"
    (call_part,) = [p for p in model_turn["parts"] if "functionCall" in p]
    assert call_part["thoughtSignature"] == "sig-gemini-1"
    response_part = contents[2]["parts"][0]["functionResponse"]
    assert response_part["name"] == "get_weather"


@pytest.mark.parametrize("family", ["openai_responses"], indirect=True)
@pytest.mark.parametrize("streamed", [False, True])
async def test_responses_reasoning_item_is_replayed_before_the_call(
    server: FakeProviderServer, llm: AbstractLLMClient, streamed: bool
) -> None:
    server.script(
        Reply(
            text="",
            thinking="The user wants the weather.",
            finish="tool_calls",
            tool_calls=[("call_1", "get_weather", {"city": "Paris"})],
        ),
        Reply(text="21 degrees."),
    )
    if streamed:
        result = await stream_tools(llm, ASK, tools=[get_weather]).run()
    else:
        result = await run_tools(llm, ASK, tools=[get_weather])
    assert result.unwrap().content == "21 degrees."
    items = server.requests[1].json["input"]
    assert [i.get("type", i.get("role")) for i in items] == [
        "user",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    assert items[1]["encrypted_content"]  # sent back whole, as the API requires
    assert items[3] == {"type": "function_call_output", "call_id": "call_1", "output": WEATHER_JSON}


# -- streaming -----------------------------------------------------------------------------


async def test_stream_folds_to_the_same_run(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    script = (
        _calls(
            ("call_1", "get_weather", {"city": "Paris"}),
            ("call_2", "get_weather", {"city": "Rome"}),
        ),
        Reply(text="It is 21 degrees in both.", prompt_tokens=40, completion_tokens=9),
    )
    server.script(*script)
    expected = (await run_tools(llm, ASK, tools=[get_weather])).unwrap()
    server.script(*script)
    events: list[Any] = []
    stream = stream_tools(llm, ASK, tools=[get_weather])
    async for event in stream:
        events.append(event)
    kinds = [type(e).__name__ for e in events]
    # Model deltas first, then each result as it finishes, then the step; then the answer.
    first_step = kinds.index("ToolStep")
    assert set(kinds[:first_step]) == {"StreamChunk", "ToolResult"}
    assert kinds[first_step - 2 : first_step] == ["ToolResult", "ToolResult"]
    assert kinds[-1] == "ToolStep" and kinds.count("ToolStep") == 2
    text = "".join(e.delta for e in events if isinstance(e, StreamChunk))
    assert text == "It is 21 degrees in both."
    assert any(isinstance(e, StreamChunk) and e.tool_calls for e in events)
    steps = [e for e in events if isinstance(e, ToolStep)]
    assert steps[-1].completion.content == expected.content
    assert [r.content for r in steps[0].results] == [r.content for r in expected.results]
    usage = steps[0].completion.usage + steps[1].completion.usage
    assert usage == expected.usage
    assert [m.role for m in expected.messages] == ["user", "assistant", "tool", "tool", "assistant"]


async def test_stream_run_returns_the_tool_run(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})), Reply(text="21 degrees."))
    run = (await stream_tools(llm, ASK, tools=[get_weather]).run()).unwrap()
    assert run.content == "21 degrees."
    assert run.results[0].content == WEATHER_JSON
    assert run.usage.prompt_tokens == 32  # 20 + 12
    assert [m.role.value for m in run.messages] == ["user", "assistant", "tool", "assistant"]


async def test_stream_step_limit_raises_after_the_last_step(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})))
    stream = stream_tools(llm, ASK, tools=[get_weather], max_steps=2)
    steps = 0
    with pytest.raises(MaxStepsExceededError) as caught:
        async for event in stream:
            steps += isinstance(event, ToolStep)
    assert steps == 2 and len(caught.value.run.steps) == 2
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})))
    result = await stream_tools(llm, ASK, tools=[get_weather], max_steps=1).run()
    assert isinstance(result, Err) and isinstance(result.error, MaxStepsExceededError)


async def test_stream_invalid_json_arguments(
    family: Family, server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    if family.name not in STREAMED_JSON_TEXT_ARGUMENTS:
        pytest.skip(f"{family.name} streams tool arguments as whole objects")
    server.script(_calls(("call_1", "get_weather", '{"city": "Par')), Reply(text="later"))
    result = await stream_tools(llm, ASK, tools=[get_weather]).run()
    if isinstance(result, Err):
        # A decoder may refuse the broken fragment itself; it must say so with a typed error.
        assert isinstance(result.error, LLMError)
        return
    bad = result.unwrap().results[0]
    assert bad.error_kind == "invalid_arguments"
    assert _holds(server.requests[1].json, bad.content)


async def test_stream_results_arrive_as_they_finish(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    release = asyncio.Event()

    async def gate(name: str) -> str:
        """Waits for the gate unless it is 'fast'."""
        if name != "fast":
            await asyncio.wait_for(release.wait(), 10)
        return name

    server.script(
        _calls(("call_1", "gate", {"name": "slow"}), ("call_2", "gate", {"name": "fast"})),
        Reply(text="ok"),
    )
    order: list[str] = []
    async for event in stream_tools(llm, ASK, tools=[gate]):
        if isinstance(event, ToolResult):
            order.append(event.content)
            release.set()  # the slow one may finish only after the fast one was yielded
    assert order == ["fast", "slow"]


async def test_stream_cancellation_leaves_no_task(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def slow(city: str) -> str:
        """Takes forever."""
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    server.script(_calls(("call_1", "slow", {"city": "Paris"})), Reply(text="unreachable"))
    before = asyncio.all_tasks()

    async def consume() -> None:
        async for _ in stream_tools(llm, ASK, tools=[slow]):
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == [True]
    assert _our_pending_tasks(before) == []


# -- through the router --------------------------------------------------------------------


async def test_through_the_router() -> None:
    from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute

    first, second = OpenAIServer(), OpenAIServer()
    await first.start()
    await second.start()
    try:
        first.script(Reply(error="server"))  # the first route always fails: cascade
        second.script(
            _calls(("call_1", "get_weather", {"city": "Paris"})), Reply(text="21 via route 2")
        )
        router = LLMRouter.from_config(
            LLMConfig(
                providers=[
                    ProviderRoute(
                        name=f"r{i}",
                        provider="openai",
                        model="gpt-4o-mini",
                        base_url=s.url + "/v1",
                        api_key=SECRET,
                    )
                    for i, s in enumerate((first, second))
                ]
            ),
            default=ClientConfig(provider="openai", api_key="sk-x", max_retries=0),
        )
        async with router:
            run = (await run_tools(router, ASK, tools=[get_weather])).unwrap()
            assert run.content == "21 via route 2"
            assert run.results[0].content == WEATHER_JSON
            streamed = (await stream_tools(router, ASK, tools=[get_weather]).run()).unwrap()
            assert streamed.content == "21 via route 2"
    finally:
        await first.stop()
        await second.stop()


async def test_usage_is_a_sum_not_the_last(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    server.script(
        _calls(("call_1", "get_weather", {"city": "Paris"})),
        _calls(("call_2", "get_weather", {"city": "Rome"})),
        Reply(text="done", prompt_tokens=50, completion_tokens=3),
    )
    run = (await run_tools(llm, ASK, tools=[get_weather])).unwrap()
    assert len(run.steps) == 3
    assert run.usage.prompt_tokens == 20 + 20 + 50
    assert run.usage.completion_tokens == 7 + 7 + 3
    assert run.usage != run.completion.usage
    assert isinstance(run.usage, Usage)


# -- the conversation manager --------------------------------------------------------------


async def test_conversation_manager_tool_turn(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    manager = ConversationManager(
        ConversationConfig(max_turns=1), llm_client=llm, tools=[get_weather]
    )
    await manager.add_message({"role": "user", "content": "Weather in Paris?"})
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})), Reply(text="21 in Paris."))
    run = (await manager.run_tools()).unwrap()
    assert run.content == "21 in Paris."
    assert [m.role.value for m in manager.history] == ["user", "assistant", "tool", "assistant"]
    assert manager.usage == run.usage and manager.responses == 2
    assert manager.last_completion == run.completion
    # The next turn trims the first one whole (max_turns=1): a call never loses its result.
    await manager.add_message({"role": "user", "content": "And Rome?"})
    server.script(_calls(("call_2", "get_weather", {"city": "Rome"})), Reply(text="21 in Rome."))
    (await manager.run_tools()).unwrap()
    history = manager.history
    assert [m.role.value for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[0].text == "And Rome?"
    assert history[2].tool_call_id == history[1].tool_calls[0].id
    # The second turn's second request carried its own call and result, not the first turn's.
    assert _holds(server.requests[3].json, '{"city":"Rome","temp":21,"unit":"c"}')
    assert not _holds(server.requests[3].json, WEATHER_JSON)
    # A plain answer can follow a tool turn.
    await manager.add_message({"role": "user", "content": "Thanks"})
    server.script(Reply(text="You're welcome."))
    assert (await manager.get_response()).unwrap().content == "You're welcome."


async def test_conversation_keeps_a_partial_tool_turn(
    server: FakeProviderServer, llm: AbstractLLMClient
) -> None:
    manager = ConversationManager(llm_client=llm)
    await manager.add_message({"role": "user", "content": "Weather?"})
    server.script(_calls(("call_1", "get_weather", {"city": "Paris"})))
    result = await manager.run_tools([get_weather], max_steps=1)
    assert isinstance(result, Err) and isinstance(result.error, MaxStepsExceededError)
    assert [m.role.value for m in manager.history] == ["user", "assistant", "tool"]
    assert manager.pending_tool_calls() == []
    server.script(Reply(text="21."))
    assert (await manager.run_tools([get_weather])).unwrap().content == "21."


# -- the mcp extra -------------------------------------------------------------------------


def test_mcp_without_the_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from lexigram.ai.llm.exceptions import MissingExtraError
    from lexigram.ai.llm.mcp import MCPTools

    monkeypatch.setitem(sys.modules, "mcp", None)  # ``import mcp`` now fails
    with pytest.raises(MissingExtraError, match=r"pip install 'lexigram-ai-llm\[mcp\]'"):
        asyncio.run(MCPTools.stdio("some-mcp-server --flag").open())
