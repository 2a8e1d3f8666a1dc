"""``lexigram-llm chat --tool module:function`` and ``--mcp COMMAND``: the tool loop from the
command line against the OpenAI loopback server (run in its own thread: ``main()`` runs its
own event loop), each call printed to stderr, the answer to stdout."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm.cli import main

MCP_SERVER = Path(__file__).parent / "harness" / "mcp_weather_server.py"

TOOLS_PY = '''
def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temp": 21}
'''


@pytest.fixture
def provider() -> Iterator[OpenAIServer]:
    server = OpenAIServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("LEX_") or name == "OPENAI_API_KEY":
            monkeypatch.delenv(name)
    (tmp_path / "mytools.py").write_text(TOOLS_PY)
    return tmp_path


def _chat(provider: OpenAIServer, *extra: str) -> list[str]:
    return [
        "chat",
        "Weather in Paris?",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--api-base",
        provider.url + "/v1",
        *extra,
    ]


def _script(provider: OpenAIServer, name: str, args: dict[str, object], answer: str) -> None:
    provider.script(
        Reply(text="", finish="tool_calls", tool_calls=[("call_1", name, args)]),
        Reply(text=answer),
    )


@pytest.mark.parametrize("stream", [True, False])
def test_tool_module_function(
    provider: OpenAIServer,
    user: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stream: bool,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delitem(sys.modules, "mytools", raising=False)
    _script(provider, "get_weather", {"city": "Paris"}, "It is 21 degrees.")
    flags = ["--tool", "mytools:get_weather", *([] if stream else ["--no-stream"])]
    assert main(_chat(provider, *flags)) == 0
    out, err = capsys.readouterr()
    assert out == "It is 21 degrees.\n"
    assert '[tool] get_weather({"city":"Paris"}) -> {"city":"Paris","temp":21}' in err
    assert provider.requests[0].json["tools"][0]["function"]["name"] == "get_weather"


def test_tool_from_a_file_path(
    provider: OpenAIServer,
    user: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _script(provider, "get_weather", {"city": "Oslo"}, "Cold.")
    assert main(_chat(provider, "--tool", str(user / "mytools.py") + ":get_weather")) == 0
    out, err = capsys.readouterr()
    assert out == "Cold.\n" and "[tool] get_weather" in err


def test_mcp_server_command(
    provider: OpenAIServer,
    user: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _script(provider, "add", {"a": 2, "b": 3}, "Five.")
    command = f"{sys.executable} {MCP_SERVER}"
    assert main(_chat(provider, "--mcp", command, "--no-stream")) == 0
    out, err = capsys.readouterr()
    assert out == "Five.\n"
    assert '[tool] add({"a":2,"b":3}) -> 5' in err


def test_step_limit_and_bad_tool_specs(
    provider: OpenAIServer,
    user: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delitem(sys.modules, "mytools", raising=False)
    provider.script(
        Reply(text="", finish="tool_calls", tool_calls=[("c", "get_weather", {"city": "X"})])
    )
    assert main(_chat(provider, "--tool", "mytools:get_weather", "--max-steps", "2")) == 1
    assert "error: MaxStepsExceededError:" in capsys.readouterr().err
    for spec, message in [
        ("nocolon", "use MODULE:FUNCTION"),
        ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
        ("mytools:missing", "mytools has no missing"),
    ]:
        assert main(_chat(provider, "--tool", spec)) == 2
        assert message in capsys.readouterr().err


def test_an_mcp_command_that_fails_is_a_usage_error(
    provider: OpenAIServer,
    user: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    command = f"{sys.executable} -c 'import sys; sys.exit(3)'"
    assert main(_chat(provider, "--mcp", command)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: _UsageError: --mcp") and "could not open the MCP server" in err
    assert provider.requests == []
