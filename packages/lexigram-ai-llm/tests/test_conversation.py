"""ConversationManager: history with tool calls and thinking, trimming by turns and by token
budget, streaming, export/import, usage totals — and a trimmed conversation still makes a valid
request for each wire family, checked on the family's loopback server."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.bedrock_server import BedrockServer, use_test_credentials
from harness.cohere_server import CohereServer
from harness.conformance import SECRET
from harness.gemini_server import GeminiServer
from harness.ollama_server import OllamaServer
from harness.openai_server import OpenAIServer
from harness.server import FakeProviderServer, Reply
from pydantic import SecretStr, ValidationError

from lexigram.ai.llm import (
    ClientConfig,
    ConversationConfig,
    ConversationManager,
    TokenCounterRegistry,
    create_llm_client,
)
from lexigram.ai.llm.module import StubLLMClient
from lexigram.ai.llm.types import ChatMessage, ImageDataPart, Role, TextPart, Usage
from lexigram.result import Err, Ok

SYSTEM = "You are a weather assistant."
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def tool_turn(n: int, question: str) -> list[dict[str, Any]]:
    """A user question answered through a tool call, with a signed thinking block."""
    call_id = f"call_{n}"
    return [
        {"role": "user", "content": question},
        {
            "role": "assistant",
            "content": "",
            "thinking": [
                {"content": f"I should look up the weather ({n}).", "signature": f"{SIGNATURE}{n}"}
            ],
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": f'{{"city": "City{n}"}}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call_id,
            "name": "get_weather",
            "content": f'{{"temp": {10 + n}}}',
        },
        {"role": "assistant", "content": f"It is {10 + n} degrees in City{n}."},
    ]


# -- basics ----------------------------------------------------------------------------------


async def test_get_response_appends_and_totals_usage() -> None:
    llm = StubLLMClient(["Hi there!", "Fine, thanks."])
    manager = ConversationManager(config=ConversationConfig(max_turns=10), llm_client=llm)
    await manager.add_message({"role": "user", "content": "Hello"})
    first = await manager.get_response()
    assert isinstance(first, Ok) and first.value.content == "Hi there!"
    await manager.add_message(ChatMessage.user("How are you?"))
    second = await manager.get_response()
    assert isinstance(second, Ok)
    assert [m.role for m in manager.history] == [Role.USER, Role.ASSISTANT] * 2
    assert manager.responses == 2
    assert manager.usage == first.value.usage + second.value.usage
    assert manager.usage.completion_tokens == 2 + 2
    assert manager.last_completion == second.value
    assert manager.turns == 2
    # The second call saw the whole history.
    assert [m.text for m in llm.calls[1].messages] == ["Hello", "Hi there!", "How are you?"]


async def test_errors_leave_the_history_unchanged() -> None:
    server = OpenAIServer()
    await server.start()
    try:
        server.script(Reply(error="invalid_request"))
        llm = create_llm_client(
            ClientConfig(
                provider="openai",
                model="m",
                api_base=server.url + "/v1",
                api_key=SecretStr(SECRET),
                max_retries=0,
            )
        )
        async with llm:
            manager = ConversationManager(llm_client=llm)
            await manager.add_message({"role": "user", "content": "Hello"})
            result = await manager.get_response()
        assert isinstance(result, Err)
        assert len(manager.history) == 1 and manager.usage == Usage()
    finally:
        await server.stop()


async def test_order_is_checked_so_requests_stay_valid() -> None:
    manager = ConversationManager(llm_client=StubLLMClient(["ok"]))
    with pytest.raises(ValueError, match="add a message"):
        await manager.get_response()
    turn = tool_turn(1, "Weather?")
    await manager.add_message(turn[0])
    await manager.add_message(turn[1])
    assert manager.pending_tool_calls() == ["call_1"]
    with pytest.raises(ValueError, match="no results yet"):
        await manager.add_message({"role": "user", "content": "hurry"})
    with pytest.raises(ValueError, match="need their results"):
        await manager.get_response()
    with pytest.raises(ValueError, match="answers no pending tool call"):
        await manager.add_message({"role": "tool", "tool_call_id": "call_9", "content": "x"})
    await manager.add_message(turn[2])
    assert manager.pending_tool_calls() == []
    assert isinstance(await manager.get_response(), Ok)
    with pytest.raises(ValueError, match="no llm_client"):
        await ConversationManager().get_response()
    with pytest.raises(ValidationError):
        ConversationConfig(max_turns=0)


async def test_tool_calls_and_signed_thinking_come_back_from_the_provider() -> None:
    server = AnthropicServer()
    await server.start()
    try:
        server.script(
            Reply(
                text="",
                thinking="Let me check.",
                thinking_signature="sig-123",
                tool_calls=[("toolu_9", "get_weather", {"city": "Oslo"})],
                finish="tool_calls",
            )
        )
        llm = create_llm_client(
            ClientConfig(
                provider="anthropic",
                model="claude-sonnet-4",
                api_base=server.url,
                api_key=SecretStr(SECRET),
            )
        )
        async with llm:
            manager = ConversationManager(ConversationConfig(system_prompt=SYSTEM), llm)
            await manager.add_message({"role": "user", "content": "Weather in Oslo?"})
            result = await manager.get_response(max_tokens=1000)
        assert isinstance(result, Ok)
        kept = manager.history[-1]
        assert kept.tool_calls[0].id == "toolu_9"
        assert kept.thinking[0].signature == "sig-123"
        assert manager.pending_tool_calls() == ["toolu_9"]
        assert manager.cost is not None and manager.cost > 0  # claude-sonnet-4 is priced
    finally:
        await server.stop()


# -- trimming --------------------------------------------------------------------------------


async def test_max_turns_drops_whole_turns_and_keeps_the_system_prompt() -> None:
    manager = ConversationManager(ConversationConfig(max_turns=2, system_prompt=SYSTEM))
    await manager.add_messages(
        [*tool_turn(1, "one?"), *tool_turn(2, "two?"), *tool_turn(3, "three?")]
    )
    sent = manager.messages
    assert sent[0] == ChatMessage.system(SYSTEM)
    assert [m.text for m in sent if m.role is Role.USER] == ["two?", "three?"]
    assert {m.tool_call_id for m in sent if m.role is Role.TOOL} == {"call_2", "call_3"}
    assert manager.turns == 2


async def test_token_budget_trims_oldest_turns_never_splitting_a_tool_call() -> None:
    counter = TokenCounterRegistry.default()
    config = {"system_prompt": SYSTEM, "model": "gpt-4"}
    probe = ConversationManager(ConversationConfig(**config), token_counter=counter)
    await probe.add_messages([*tool_turn(2, "two? " * 30), *tool_turn(3, "three?")])
    budget = probe.prompt_tokens()

    manager = ConversationManager(
        ConversationConfig(**config, max_tokens=budget), token_counter=counter
    )
    await manager.add_messages(tool_turn(1, "one? " * 40))
    await manager.add_messages([*tool_turn(2, "two? " * 30), *tool_turn(3, "three?")])
    assert manager.prompt_tokens() <= budget
    users = [m.text for m in manager.messages if m.role is Role.USER]
    assert users == ["two? " * 30, "three?"]
    assert manager.messages[0].text == SYSTEM
    # One token less and turn 2 goes too, as a whole.
    tighter = ConversationManager(
        ConversationConfig(**config, max_tokens=budget - 1), token_counter=counter
    )
    await tighter.add_messages([*tool_turn(2, "two? " * 30), *tool_turn(3, "three?")])
    assert [m.text for m in tighter.messages if m.role is Role.USER] == ["three?"]
    assert [m.tool_call_id for m in tighter.messages if m.role is Role.TOOL] == ["call_3"]


async def test_the_latest_turn_is_kept_even_over_budget() -> None:
    manager = ConversationManager(ConversationConfig(max_tokens=5, system_prompt=SYSTEM))
    await manager.add_message({"role": "user", "content": "a rather long question " * 10})
    assert len(manager.history) == 1 and manager.messages[0].text == SYSTEM


# -- streaming -------------------------------------------------------------------------------


async def test_stream_response_appends_once_finished() -> None:
    llm = StubLLMClient(["streamed answer here"])
    manager = ConversationManager(llm_client=llm)
    await manager.add_message({"role": "user", "content": "Hi"})
    text = "".join([c.delta async for c in manager.stream_response()])
    assert text == "streamed answer here"
    assert manager.history[-1] == ChatMessage.assistant("streamed answer here")
    assert manager.usage.completion_tokens == 3


async def test_an_abandoned_stream_leaves_the_history_alone() -> None:
    manager = ConversationManager(llm_client=StubLLMClient(["one two three four"]))
    await manager.add_message({"role": "user", "content": "Hi"})
    stream = manager.stream_response()
    async for _ in stream:
        break
    await stream.aclose()
    assert len(manager.history) == 1 and manager.responses == 0


async def test_stream_response_text_view() -> None:
    manager = ConversationManager(llm_client=StubLLMClient(["folded"]))
    await manager.add_message({"role": "user", "content": "Hi"})
    assert await manager.stream_response().text() == Ok("folded")
    assert manager.history[-1].text == "folded"


# -- export / import -------------------------------------------------------------------------


async def test_json_round_trip_keeps_everything() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
    manager = ConversationManager(
        ConversationConfig(max_turns=5, system_prompt=SYSTEM, model="gpt-4o"),
        llm_client=StubLLMClient(["done"]),
    )
    await manager.add_messages(tool_turn(1, "one?"))
    await manager.add_message(ChatMessage.user([TextPart("And this?"), ImageDataPart(png)]))
    await manager.get_response()
    text = manager.to_json()
    restored = ConversationManager.from_json(text, llm_client=StubLLMClient(["next"]))
    assert restored.history == manager.history
    assert restored.config == manager.config
    assert restored.usage == manager.usage and restored.responses == 1
    assert restored.history[1].thinking[0].signature == f"{SIGNATURE}1"
    assert restored.to_json() == text
    await restored.add_message({"role": "user", "content": "go on"})
    assert isinstance(await restored.get_response(), Ok)
    with pytest.raises(ValueError, match="version"):
        ConversationManager.from_dict({"version": 99})
    with pytest.raises(ValueError, match="not a conversation export"):
        ConversationManager.from_json("[1, 2]")


# -- a trimmed conversation is a valid request for every wire family -----------------------


def _openai_like(body: dict[str, Any], system: str) -> None:
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": system}
    open_calls: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            assert not open_calls, f"tool calls {open_calls} left without results"
            open_calls = {c["id"] for c in message.get("tool_calls") or ()}
        elif message["role"] == "tool":
            assert message["tool_call_id"] in open_calls
            open_calls.discard(message["tool_call_id"])
        else:
            assert not open_calls, f"tool calls {open_calls} left without results"
    assert not open_calls


def _anthropic(body: dict[str, Any], system: str) -> None:
    system_field = body["system"]
    text = (
        system_field if isinstance(system_field, str) else "".join(b["text"] for b in system_field)
    )
    assert text == system
    messages = body["messages"]
    assert messages[0]["role"] == "user"
    for prev, message in itertools.pairwise(messages):
        assert prev["role"] != message["role"], "roles must alternate"
    for i, message in enumerate(messages):
        blocks = message["content"] if isinstance(message["content"], list) else []
        uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        if uses:
            following = messages[i + 1]["content"]
            results = {b["tool_use_id"] for b in following if b.get("type") == "tool_result"}
            assert uses == results
            thinking = [b for b in blocks if b.get("type") == "thinking"]
            assert thinking and all(b["signature"].startswith(SIGNATURE) for b in thinking)
        for block in blocks:
            if block.get("type") == "tool_result":
                previous = messages[i - 1]["content"]
                assert block["tool_use_id"] in {b.get("id") for b in previous}


def _ollama(body: dict[str, Any], system: str) -> None:
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": system}
    expected = 0
    for message in messages:
        if message["role"] == "assistant":
            assert expected == 0
            expected = len(message.get("tool_calls") or ())
        elif message["role"] == "tool":
            assert expected > 0, "a tool result without its call"
            expected -= 1
        else:
            assert expected == 0
    assert expected == 0


def _cohere(body: dict[str, Any], system: str) -> None:
    messages = body["messages"]
    assert messages[0]["role"] == "system"
    content = messages[0]["content"]
    assert (content if isinstance(content, str) else content[0]["text"]) == system
    _openai_like({"messages": [{"role": "system", "content": system}, *messages[1:]]}, system)


def _gemini(body: dict[str, Any], system: str) -> None:
    assert "".join(p["text"] for p in body["systemInstruction"]["parts"]) == system
    contents = body["contents"]
    assert contents[0]["role"] == "user"
    for i, content in enumerate(contents):
        calls = [p["functionCall"]["name"] for p in content["parts"] if "functionCall" in p]
        if calls:
            assert content["role"] == "model"
            following = contents[i + 1]
            answers = [
                p["functionResponse"]["name"] for p in following["parts"] if "functionResponse" in p
            ]
            assert following["role"] == "user" and answers == calls
        if any("functionResponse" in p for p in content["parts"]):
            assert any("functionCall" in p for p in contents[i - 1]["parts"])


def _bedrock(body: dict[str, Any], system: str) -> None:
    assert "".join(b["text"] for b in body["system"] if "text" in b) == system
    messages = body["messages"]
    assert messages[0]["role"] == "user"
    for prev, message in itertools.pairwise(messages):
        assert prev["role"] != message["role"], "roles must alternate"
    for i, message in enumerate(messages):
        uses = {b["toolUse"]["toolUseId"] for b in message["content"] if "toolUse" in b}
        if uses:
            following = messages[i + 1]["content"]
            assert uses == {b["toolResult"]["toolUseId"] for b in following if "toolResult" in b}
        for block in message["content"]:
            if "toolResult" in block:
                previous = messages[i - 1]["content"]
                ids = {b["toolUse"]["toolUseId"] for b in previous if "toolUse" in b}
                assert block["toolResult"]["toolUseId"] in ids


FAMILIES: list[
    tuple[
        str,
        type[FakeProviderServer],
        Callable[[FakeProviderServer], str],
        Callable[[dict[str, Any], str], None],
        str,
    ]
] = [
    ("openai", OpenAIServer, lambda s: s.url + "/v1", _openai_like, "gpt-4o"),
    ("anthropic", AnthropicServer, lambda s: s.url, _anthropic, "claude-sonnet-4"),
    ("gemini", GeminiServer, lambda s: s.url, _gemini, "gemini-2.5-flash"),
    (
        "bedrock",
        BedrockServer,
        lambda s: s.url,
        _bedrock,
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
    ),
    ("ollama", OllamaServer, lambda s: s.url, _ollama, "llama3.2"),
    ("cohere", CohereServer, lambda s: s.url, _cohere, "command-a"),
]


@pytest_asyncio.fixture(params=FAMILIES, ids=[f[0] for f in FAMILIES])
async def family(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Any, ...]]:
    name, server_cls, base, check, model = request.param
    if name == "bedrock":
        use_test_credentials(monkeypatch)  # SigV4 from the standard chain, verified by the server
    server = server_cls()
    await server.start()
    try:
        yield name, server, base(server), check, model
    finally:
        await server.stop()


async def test_a_trimmed_conversation_is_a_valid_request(family: tuple[Any, ...]) -> None:
    name, server, api_base, check, model = family
    key = None if name == "bedrock" else SecretStr(SECRET)  # bedrock signs with SigV4
    llm = create_llm_client(
        ClientConfig(provider=name, model=model, api_base=api_base, api_key=key, max_retries=0)
    )
    counter = TokenCounterRegistry.default()
    probe = ConversationManager(
        ConversationConfig(system_prompt=SYSTEM, model=model),
        token_counter=counter,
        tools=[WEATHER_TOOL],
    )
    await probe.add_messages([*tool_turn(2, "second?"), {"role": "user", "content": "third?"}])
    config = ConversationConfig(system_prompt=SYSTEM, max_tokens=probe.prompt_tokens(), max_turns=5)
    async with llm:
        manager = ConversationManager(config, llm, token_counter=counter, tools=[WEATHER_TOOL])
        await manager.add_messages(tool_turn(1, "first? " * 50))
        await manager.add_messages(tool_turn(2, "second?"))
        await manager.add_message({"role": "user", "content": "third?"})
        assert [m.text for m in manager.messages if m.role is Role.USER] == ["second?", "third?"]
        server.script(Reply(text="Sunny."))
        result = await manager.get_response(max_tokens=256)
    assert isinstance(result, Ok), result
    assert len(server.requests) == 1
    check(server.requests[0].json, SYSTEM)
    assert "get_weather" in server.requests[0].body.decode()  # the tools went along
    assert manager.history[-1].text == "Sunny."


@pytest.mark.parametrize(
    "export",
    [
        {"version": 1, "usage": {"bogus_tokens": 1}},
        {"version": 1, "usage": [1, 2]},
        {"version": 1, "messages": [5]},
    ],
)
def test_a_malformed_export_is_a_value_error(export: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a conversation export"):
        ConversationManager.from_dict(export)


async def test_the_budget_follows_tools_and_system_prompt_changed_later() -> None:
    manager = ConversationManager(ConversationConfig(model="gpt-4o"))
    await manager.add_message({"role": "user", "content": "Hi"})
    bare = manager.prompt_tokens()
    manager.tools.append(WEATHER_TOOL)
    with_tool = manager.prompt_tokens()
    assert with_tool > bare
    manager.config.system_prompt = "You are a terse assistant who answers in one word."
    assert manager.prompt_tokens() > with_tool
    manager.tools.clear()
    manager.config.system_prompt = None
    assert manager.prompt_tokens() == bare
