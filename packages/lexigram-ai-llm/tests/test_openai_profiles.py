"""Every OpenAI-family profile passes the conformance suite against the loopback server, and
each profile's own wire details (URLs, auth headers, quirks) reach the server."""

from __future__ import annotations

import orjson
import pytest
from harness.conformance import SECRET, ConformanceSuite, Family
from harness.openai_server import MistralServer, OpenAIServer, OpenRouterServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.exceptions import ConfigurationError
from lexigram.contracts.ai.thinking import ThinkingConfig


def _v1(server: OpenAIServer) -> str:
    return server.url + "/v1"


class TestAzureOpenAI(ConformanceSuite):
    family = Family("azure-openai", OpenAIServer, lambda s: s.url, model="my-deployment")


class TestOpenRouter(ConformanceSuite):
    family = Family("openrouter", OpenRouterServer, _v1, model="anthropic/claude-sonnet-4")


class TestGroq(ConformanceSuite):
    family = Family("groq", OpenAIServer, _v1)


class TestDeepSeek(ConformanceSuite):
    family = Family("deepseek", OpenAIServer, _v1)


class TestTogether(ConformanceSuite):
    family = Family("together", OpenAIServer, _v1)


class TestFireworks(ConformanceSuite):
    family = Family("fireworks", OpenAIServer, _v1)


class TestMistral(ConformanceSuite):
    family = Family("mistral", MistralServer, _v1)


class TestXAI(ConformanceSuite):
    family = Family("xai", OpenAIServer, _v1)


class TestCloudflare(ConformanceSuite):
    family = Family("cloudflare", OpenAIServer, _v1, config={"extra": {"account_id": "acc123"}})


class TestOpenAICompatible(ConformanceSuite):
    family = Family("openai_compatible", OpenAIServer, _v1)


# -- profile specifics -------------------------------------------------------------------


async def _one_call(provider: str, server: OpenAIServer, **config: object) -> dict[str, object]:
    client = create_llm_client(
        ClientConfig(provider=provider, model="m1", api_key=SecretStr(SECRET), **config)  # type: ignore[arg-type]
    )
    try:
        result = await client.complete([{"role": "user", "content": "hi"}])
        assert result.is_ok(), result
    finally:
        await client.close()
    return {
        "path": server.requests[-1].path,
        "query": server.requests[-1].query,
        "headers": server.requests[-1].headers,
        "json": server.requests[-1].json,
    }


@pytest.fixture
async def server() -> OpenAIServer:  # type: ignore[misc]
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


async def test_openai_uses_bearer_and_max_completion_tokens(server: OpenAIServer) -> None:
    sent = await _one_call("openai", server, api_base=_v1(server), max_tokens=50)
    assert sent["headers"]["authorization"] == f"Bearer {SECRET}"  # type: ignore[index]
    assert sent["json"]["max_completion_tokens"] == 50  # type: ignore[index]
    assert "max_tokens" not in sent["json"]  # type: ignore[operator]


async def test_azure_deployment_url_api_version_and_api_key_header(server: OpenAIServer) -> None:
    sent = await _one_call("azure-openai", server, api_base=server.url)
    assert sent["path"] == "/openai/deployments/m1/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    assert sent["headers"]["api-key"] == SECRET  # type: ignore[index]
    assert "authorization" not in sent["headers"]  # type: ignore[operator]


async def test_openrouter_attribution_headers_and_reasoning(server: OpenAIServer) -> None:
    sent = await _one_call(
        "openrouter",
        server,
        api_base=_v1(server),
        extra={"headers": {"HTTP-Referer": "https://example.org", "X-Title": "My App"}},
        thinking=ThinkingConfig(effort="high"),
    )
    assert sent["headers"]["http-referer"] == "https://example.org"  # type: ignore[index]
    assert sent["headers"]["x-title"] == "My App"  # type: ignore[index]
    assert sent["json"]["reasoning"] == {"effort": "high"}  # type: ignore[index]


async def test_openai_reasoning_effort(server: OpenAIServer) -> None:
    sent = await _one_call(
        "openai", server, api_base=_v1(server), thinking=ThinkingConfig(effort="low")
    )
    assert sent["json"]["reasoning_effort"] == "low"  # type: ignore[index]


async def test_mistral_quirks(server: OpenAIServer) -> None:
    client = create_llm_client(
        ClientConfig(provider="mistral", model="m", api_base=_v1(server), api_key=SecretStr(SECRET))
    )
    try:
        await client.complete(
            [{"role": "user", "content": "x"}],
            seed=7,
            tool_choice="required",
            tools=[{"name": "f", "parameters": {"type": "object"}}],
        )
    finally:
        await client.close()
    body = server.requests[-1].json
    assert body["random_seed"] == 7 and "seed" not in body
    assert body["tool_choice"] == "any"


async def test_cloudflare_needs_an_account_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
    with pytest.raises(ConfigurationError, match="account_id"):
        create_llm_client(ClientConfig(provider="cloudflare", api_key=SecretStr(SECRET)))
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acc-9")
    client = create_llm_client(ClientConfig(provider="cloudflare", api_key=SecretStr(SECRET)))
    assert "/accounts/acc-9/ai/v1" in client.base_url  # type: ignore[attr-defined]


async def test_streams_ask_for_usage(server: OpenAIServer) -> None:
    client = create_llm_client(
        ClientConfig(provider="openai", model="m", api_base=_v1(server), api_key=SecretStr(SECRET))
    )
    try:
        completion = (
            await client.stream_chat([{"role": "user", "content": "x"}]).completion()
        ).unwrap()
    finally:
        await client.close()
    assert server.requests[-1].json["stream_options"] == {"include_usage": True}
    assert completion.usage.total_tokens == 19


async def test_stream_options_rejected_by_a_host_falls_back_cleanly() -> None:
    srv = MistralServer()  # rejects stream_options with 422
    await srv.start()
    client = create_llm_client(
        ClientConfig(provider="openai_compatible", model="m", api_base=_v1(srv))
    )
    try:
        completion = (
            await client.stream_chat([{"role": "user", "content": "x"}]).completion()
        ).unwrap()
        again = (await client.stream_chat([{"role": "user", "content": "x"}]).completion()).unwrap()
    finally:
        await client.close()
        await srv.stop()
    assert completion.content == again.content == Reply().text
    assert completion.usage.total_tokens == 19
    # one rejected request, then every stream goes without stream_options
    assert ["stream_options" in r.json for r in srv.requests] == [True, False, False]


def test_profiles_are_data() -> None:
    from lexigram.ai.llm.providers.openai import PROFILES

    assert {
        "openai",
        "azure-openai",
        "openrouter",
        "groq",
        "deepseek",
        "together",
        "fireworks",
        "mistral",
        "xai",
        "cloudflare",
        "openai_compatible",
    } <= set(PROFILES)
    assert orjson.dumps([p.name for p in PROFILES.values()])
