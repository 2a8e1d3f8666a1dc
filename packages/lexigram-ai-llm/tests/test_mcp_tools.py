"""MCP servers as a tool source: a real MCP server (``harness/mcp_weather_server.py``, written
with the ``mcp`` package's server API) started by the test over stdio and streamable HTTP, its
tools listed as ``ToolDefinition``s and called by ``run_tools`` against the OpenAI loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, create_llm_client, run_tools, stream_tools
from lexigram.ai.llm.client import AbstractLLMClient

pytest.importorskip("mcp", reason="the mcp extra is not installed")

from lexigram.ai.llm.mcp import MCPConnectionError, MCPTools

SERVER = Path(__file__).parent / "harness" / "mcp_weather_server.py"
ASK = [{"role": "user", "content": "Weather in Paris?"}]


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def llm(provider: OpenAIServer) -> AsyncIterator[AbstractLLMClient]:
    client = create_llm_client(
        ClientConfig(
            provider="openai",
            model="gpt-4o-mini",
            api_base=provider.url + "/v1",
            api_key="sk-test",
            max_retries=0,
        )
    )
    try:
        yield client
    finally:
        await client.close()


def stdio_weather() -> MCPTools:
    # The test's environment (the SDK passes only a safe subset by default), so the server
    # finds the same packages as the test.
    return MCPTools.stdio(sys.executable, [str(SERVER)], env=dict(os.environ))


async def test_stdio_server_tools_listed_called_and_failing(
    provider: OpenAIServer, llm: AbstractLLMClient
) -> None:
    """One server process for the whole story (starting one costs seconds of imports)."""
    async with stdio_weather() as weather:
        # Listed as ToolDefinitions: the server's names, descriptions and input schemas.
        by_name = {tool.name: tool.definition for tool in weather.tools}
        assert set(by_name) == {"get_weather", "add", "station_status"}
        definition = by_name["get_weather"]
        assert definition.description.startswith("Current weather for a city.")
        assert definition.parameters["type"] == "object"
        assert set(definition.parameters["properties"]) == {"city", "unit"}
        assert definition.parameters["required"] == ["city"]

        # Two parallel calls through the loop.
        provider.script(
            Reply(
                text="",
                finish="tool_calls",
                tool_calls=[
                    ("call_1", "get_weather", {"city": "Paris"}),
                    ("call_2", "add", {"a": 2, "b": 40}),
                ],
            ),
            Reply(text="21 degrees in Paris; 2 + 40 = 42."),
        )
        run = (await run_tools(llm, ASK, tools=[weather])).unwrap()
        assert run.content == "21 degrees in Paris; 2 + 40 = 42."
        assert [r.content for r in run.results] == ["21 degrees C and sunny in Paris", "42"]
        tools = provider.requests[0].json["tools"]
        assert {t["function"]["name"] for t in tools} == {"get_weather", "add", "station_status"}
        sent = provider.requests[1].json["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
        assert sent[2]["content"] == "21 degrees C and sunny in Paris"

        # A tool error the server reports, and arguments its schema rejects, go back to the
        # model as tool errors; the loop goes on.
        provider.script(
            Reply(
                text="",
                finish="tool_calls",
                tool_calls=[
                    ("call_1", "station_status", {"station": "PAR-1"}),
                    ("call_2", "add", {"a": "two", "b": 1}),
                ],
            ),
            Reply(text="The station is offline."),
        )
        run = (await run_tools(llm, ASK, tools=[weather])).unwrap()
        failed, invalid = run.results
        assert failed.error_kind == "raised" and "station PAR-1 is offline" in failed.content
        assert invalid.error_kind == "raised" and invalid.content.startswith("Error: ")
        assert run.content == "The station is offline."


async def test_stream_with_mcp_tools_and_a_prefix(
    provider: OpenAIServer, llm: AbstractLLMClient
) -> None:
    provider.script(
        Reply(text="", finish="tool_calls", tool_calls=[("c1", "wx_add", {"a": 1, "b": 2})]),
        Reply(text="3"),
    )
    command = f"{sys.executable} {SERVER}"
    async with MCPTools.stdio(command, prefix="wx_", env=dict(os.environ)) as weather:
        assert {t.name for t in weather.tools} == {"wx_get_weather", "wx_add", "wx_station_status"}
        run = (await stream_tools(llm, ASK, tools=[weather]).run()).unwrap()
    assert run.results[0].content == "3"
    assert run.content == "3"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):  # bounded wait for the server to listen
            if process.poll() is not None:
                pytest.fail("the MCP HTTP server exited at start")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                import time

                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


async def test_loop_calls_a_streamable_http_server_tool(
    http_server: str, provider: OpenAIServer, llm: AbstractLLMClient
) -> None:
    provider.script(
        Reply(text="", finish="tool_calls", tool_calls=[("c1", "add", {"a": 20, "b": 22})]),
        Reply(text="42"),
    )
    async with MCPTools.http(http_server, headers={"X-Test": "1"}) as remote:
        assert {t.name for t in remote.tools} == {"get_weather", "add", "station_status"}
        run = (await run_tools(llm, ASK, tools=[remote])).unwrap()
    assert run.results[0].content == "42"


async def test_a_closed_connection_refuses_calls() -> None:
    weather = stdio_weather()
    with pytest.raises(RuntimeError, match="not open"):
        await weather.call("add", {"a": 1, "b": 2})


async def test_a_server_that_cannot_start_is_a_typed_error() -> None:
    broken = MCPTools.stdio(sys.executable, ["-c", "import sys; sys.exit(3)"])
    with pytest.raises(MCPConnectionError, match="could not open the MCP server") as caught:
        await broken.open()
    assert "sys.exit" not in str(caught.value)  # arguments (tokens, maybe) are never shown
    with pytest.raises(RuntimeError, match="not open"):
        _ = broken.tools


def test_descriptions_hide_arguments_and_url_credentials() -> None:
    stdio = MCPTools.stdio("mcp-server --api-key sk-SECRET")
    remote = MCPTools.http("https://user:pw@example.test:8443/mcp?token=sk-SECRET")
    assert "SECRET" not in repr(stdio) and "SECRET" not in repr(remote)
    assert "pw" not in repr(remote) and "example.test:8443/mcp" in repr(remote)
