"""GUIDE.txt's "Structured output (JSON)" and "Conversation Manager" examples, run as written
against a loopback OpenAI server and against the embedded local model."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness.conformance import SECRET
from harness.openai_server import OpenAIServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client


async def guide_structured_output(llm: Any) -> None:
    # --- GUIDE.txt, "3. Structured output (JSON)", as written ---
    from lexigram.ai.llm import JSONExtractor

    extractor = JSONExtractor(llm_client=llm)
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    result = await extractor.extract("Extract a name", schema=schema)
    if result.is_ok():
        print(result.unwrap())


async def guide_conversation(llm: Any) -> Any:
    # --- GUIDE.txt, "Conversation Manager", as written ---
    from lexigram.ai.llm import ConversationConfig, ConversationManager

    manager = ConversationManager(
        config=ConversationConfig(max_turns=10),
        llm_client=llm,
    )
    await manager.add_message({"role": "user", "content": "Hello"})
    response = await manager.get_response()
    return manager, response


@pytest_asyncio.fixture
async def openai_llm() -> AsyncIterator[tuple[OpenAIServer, Any]]:
    server = OpenAIServer()
    await server.start()
    llm = create_llm_client(
        ClientConfig(
            provider="openai",
            model="gpt-4o-mini",
            api_base=server.url + "/v1",
            api_key=SecretStr(SECRET),
        )
    )
    try:
        yield server, llm
    finally:
        await llm.close()
        await server.stop()


async def test_structured_output_example_on_loopback(
    openai_llm: tuple[OpenAIServer, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    server, llm = openai_llm
    server.script(Reply(text='{"name": "Grace Hopper"}'))
    await guide_structured_output(llm)
    assert capsys.readouterr().out == "{'name': 'Grace Hopper'}\n"
    assert server.requests[0].json["response_format"]["type"] == "json_schema"


async def test_conversation_example_on_loopback(openai_llm: tuple[OpenAIServer, Any]) -> None:
    server, llm = openai_llm
    server.script(Reply(text="Hello! How can I help?", prompt_tokens=9, completion_tokens=6))
    manager, response = await guide_conversation(llm)
    assert response.is_ok()
    assert response.unwrap().content == "Hello! How can I help?"
    assert [m.text for m in manager.history] == ["Hello", "Hello! How can I help?"]
    assert manager.usage.total_tokens == 15
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "Hello"}]


@pytest_asyncio.fixture
async def local_llm() -> AsyncIterator[Any]:
    llm = create_llm_client(ClientConfig(provider="local"))
    try:
        yield llm
    finally:
        await llm.close()


@pytest.mark.slow
async def test_structured_output_example_on_the_local_model(
    local_llm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The example prints only when the extraction is Ok. The bundled 135M model samples at
    # temperature 0.8 and now and then (about 1 run in 30, measured) spells a name that never
    # ends, which the repetition guard cuts in every attempt: the example then prints nothing,
    # as written. Three runs as written must print at least once, and whatever they print is
    # the schema's object.
    printed: list[str] = []
    for _ in range(3):
        await guide_structured_output(local_llm)
        out = capsys.readouterr().out.strip()
        if out:
            printed.append(out)
            break
    assert printed, "three runs of the guide's example printed nothing"
    value = ast.literal_eval(printed[0])
    assert isinstance(value, dict)
    assert set(value) <= {"name"} and isinstance(value.get("name", ""), str)


@pytest.mark.slow
async def test_conversation_example_on_the_local_model(local_llm: Any) -> None:
    manager, response = await guide_conversation(local_llm)
    assert response.is_ok(), response
    assert response.unwrap().content.strip()
    assert len(manager.history) == 2
    assert manager.usage.prompt_tokens > 0 and manager.usage.completion_tokens > 0
