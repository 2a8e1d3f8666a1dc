"""GUIDE.txt's "Basic completion with error handling" and "Streaming" examples, run as written
against the OpenAI loopback server with only ``api_base`` pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram import Application
from lexigram.ai.llm import ClientConfig, LLMModule


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


async def test_basic_completion_with_error_handling(
    server: OpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script(Reply(text="Why did the loopback cross the road?"))
    config = ClientConfig(
        provider="openai", model="gpt-4o", api_key="sk-test", api_base=server.url + "/v1"
    )
    async with Application.boot(modules=[LLMModule.configure(config)], name="guide") as app:
        container = app.container
        # --- from the guide, as written ---
        from lexigram.contracts.ai import LLMClientProtocol
        from lexigram.contracts.ai.llm import LLMError
        from lexigram.result import Result

        llm = await container.resolve(LLMClientProtocol)
        result: Result[CompletionProtocol, LLMError] = await llm.complete(  # type: ignore[name-defined]  # noqa: F821
            [{"role": "user", "content": "Tell me a joke"}],
        )

        reply = result.match(
            ok=lambda c: c.content,
            err=lambda e: f"Failed: {e}",
        )
        print(reply)
        # --- end of the guide's example ---
    assert capsys.readouterr().out == "Why did the loopback cross the road?\n"
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "Tell me a joke"}]


async def test_basic_completion_error_path_prints_a_typed_failure(
    server: OpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script(Reply(error="auth", error_message="Incorrect API key provided"))
    config = ClientConfig(
        provider="openai",
        model="gpt-4o",
        api_key="sk-wrong-key-123456",
        api_base=server.url + "/v1",
    )
    async with Application.boot(modules=[LLMModule.configure(config)]) as app:
        from lexigram.contracts.ai import LLMClientProtocol

        llm = await app.container.resolve(LLMClientProtocol)
        result = await llm.complete([{"role": "user", "content": "Tell me a joke"}])
        reply = result.match(ok=lambda c: c.content, err=lambda e: f"Failed: {e}")
        print(reply)
    out = capsys.readouterr().out
    assert out.startswith("Failed: Authentication failed")
    assert "sk-wrong-key-123456" not in out


async def test_streaming(server: OpenAIServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.script(Reply(text="Roses are red, loopbacks are fast.", chunk_chars=4))
    config = ClientConfig(
        provider="openai", model="gpt-4o", api_key="sk-test", api_base=server.url + "/v1"
    )
    async with Application.boot(modules=[LLMModule.configure(config)]) as app:
        from lexigram.contracts.ai import LLMClientProtocol

        llm = await app.container.resolve(LLMClientProtocol)
        # --- from the guide, as written ---
        stream = llm.stream_chat([{"role": "user", "content": "Write a poem"}])

        async for chunk in stream:
            if chunk.delta:
                print(chunk.delta, end="")
        # --- end of the guide's example ---
    assert capsys.readouterr().out == "Roses are red, loopbacks are fast."


async def test_config_from_yaml_and_environment_reaches_the_client(
    server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "application.yaml").write_text(
        "ai_llm:\n"
        "  provider: openai\n"
        "  model: model-from-yaml\n"
        f"  api_base: {server.url}/v1\n"
        "  temperature: 0.9\n"
        "  api_key: ${MY_TEST_KEY}\n"
    )
    monkeypatch.setenv("MY_TEST_KEY", "sk-from-env-interpolation")
    monkeypatch.setenv("LEX_AI_LLM__TEMPERATURE", "0.2")
    monkeypatch.setenv("LEX_AI_LLM__MAX_TOKENS", "33")
    monkeypatch.setenv("LEX_CONFIG_DIR", str(tmp_path))
    async with Application.boot(modules=[LLMModule.configure(ClientConfig(max_tokens=44))]) as app:
        from lexigram.contracts.ai import LLMClientProtocol

        llm = await app.container.resolve(LLMClientProtocol)
        assert (await llm.complete([{"role": "user", "content": "hi"}])).is_ok()
    sent = server.requests[0]
    assert sent.json["model"] == "model-from-yaml"  # YAML
    assert sent.json["temperature"] == 0.2  # environment beats YAML
    assert sent.json["max_completion_tokens"] == 44  # explicit beats environment
    assert sent.headers["authorization"] == "Bearer sk-from-env-interpolation"


async def test_stub_module_for_users_tests() -> None:
    async with Application.boot(modules=[LLMModule.stub(["first", "second answer"])]) as app:
        from lexigram.contracts.ai import LLMClientProtocol

        llm = await app.container.resolve(LLMClientProtocol)
        assert (await llm.complete([{"role": "user", "content": "a"}])).unwrap().content == "first"
        streamed = [c.delta async for c in llm.stream_chat([{"role": "user", "content": "b"}])]
        assert "".join(streamed) == "second answer"
        assert (await app.health_check()).is_healthy


async def test_client_config_example_and_its_thinking_reach_the_provider(
    server: OpenAIServer,
) -> None:
    # --- from the guide's ClientConfig section, as written (plus api_base for the loopback) ---
    from lexigram.ai.llm import ClientConfig, ThinkingConfig

    config = ClientConfig(
        provider="openai",
        model="gpt-4o",
        api_key="sk-...",
        temperature=0.7,
        max_tokens=2000,
        timeout=60,
        thinking=ThinkingConfig(budget_tokens=5000),
    )
    # --- end of the guide's example ---
    assert "sk-..." not in repr(config)
    from lexigram.ai.llm import create_llm_client

    llm = create_llm_client(config.model_copy(update={"api_base": server.url + "/v1"}))
    try:
        assert (await llm.complete([{"role": "user", "content": "hi"}])).is_ok()
    finally:
        await llm.close()
    sent = server.requests[0]
    assert sent.json["model"] == "gpt-4o"
    assert sent.json["temperature"] == 0.7
    assert sent.json["max_completion_tokens"] == 2000
    assert sent.headers["authorization"] == "Bearer sk-..."
