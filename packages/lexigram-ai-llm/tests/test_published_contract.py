"""The published contract: what the original library's documentation promises its users, who
bring that code along. Each test goes through the public API as the documentation writes it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram import Application
from lexigram.ai.llm import (
    AbstractLLMClient,
    ClientConfig,
    LLMModule,
    ProviderRegistry,
    TiktokenCounter,
    TokenCounterRegistry,
    create_llm_client,
)
from lexigram.ai.llm.exceptions import ConfigurationError, UnknownProviderError
from lexigram.ai.llm.pricing import CostEstimate, estimate_cost, model_table
from lexigram.ai.llm.routing import LLMConfig, LLMRouter
from lexigram.ai.llm.tokens import CharEstimateCounter
from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk
from lexigram.contracts.ai import LLMClientProtocol

LEXIGRAM_LLM = Path(sys.executable).with_name("lexigram-llm")
KEY_VARIABLES = sorted(
    {name for info in ProviderRegistry().list() for name in info.api_key_env}
    | {"GOOGLE_APPLICATION_CREDENTIALS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
)
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A user with no provider key, no LEX_ settings and an empty working directory."""
    monkeypatch.chdir(tmp_path)
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("LEX_"):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


class MyClient(AbstractLLMClient):
    """A user's provider, as the documentation writes one."""

    provider_name = "my_provider"

    async def _do_complete(self, request: ChatRequest) -> Completion:
        return Completion(content="mine", model=request.model, provider=self.provider_name)

    async def _do_stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        yield StreamChunk(delta="mi")
        yield StreamChunk(delta="ne", finish_reason="stop")


class DuckClient:
    """Satisfies ``LLMClientProtocol`` without subclassing ``AbstractLLMClient``."""

    def __init__(self, config: ClientConfig, **policies: Any) -> None:
        self.config = config

    async def complete(self, messages: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stream_chat(self, messages: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def health_check(self, timeout: float = 5.0) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        pass


@pytest.fixture
def my_provider() -> Iterator[str]:
    """``my_provider`` registered the documented way, and forgotten afterwards."""
    ProviderRegistry().register("my_provider", MyClient)
    try:
        yield "my_provider"
    finally:
        ProviderRegistry().unregister("my_provider")


# -- one error type for one mistake, streamed or not ---------------------------------------


async def test_a_missing_key_raises_configuration_error_from_a_stream_as_from_complete(
    no_keys: Path,
) -> None:
    client = create_llm_client(ClientConfig(provider="openai", model="gpt-4o"))
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as from_complete:
        await client.complete(HELLO)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as from_stream:
        async for _ in client.stream_chat(HELLO):
            pass
    assert type(from_stream.value) is type(from_complete.value)
    assert str(from_stream.value) == str(from_complete.value)
    with pytest.raises(ConfigurationError):  # the Result views do not hide it either
        await client.stream_chat(HELLO).collect()
    await client.close()
    # A router (a drop-in client) streams the same error.
    router = LLMRouter.from_config(LLMConfig(), default=ClientConfig(provider="openai"))
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        async for _ in router.stream_chat(HELLO):
            pass
    await router.close()


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_cli_without_a_key_is_a_configuration_error_streamed_or_not(
    no_keys: Path, mode: list[str]
) -> None:
    done = subprocess.run(
        [str(LEXIGRAM_LLM), "chat", "--provider", "openai", *mode, "hi"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=no_keys,
        env=dict(os.environ),  # the fixture cleared keys and LEX_ variables
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ConfigurationError: No API key for provider 'openai'")
    assert "OPENAI_API_KEY" in lines[0]


# -- one default registry ------------------------------------------------------------------


async def test_a_provider_registered_on_a_new_registry_reaches_create_llm_client(
    no_keys: Path, my_provider: str
) -> None:
    client = create_llm_client(ClientConfig(provider=my_provider, model="m"))
    assert isinstance(client, MyClient)
    assert (await client.complete(HELLO)).unwrap().content == "mine"
    assert (await client.stream_chat(HELLO).text()).unwrap() == "mine"
    assert my_provider in ProviderRegistry().names()


async def test_a_provider_registered_on_a_new_registry_reaches_llm_module(
    no_keys: Path, my_provider: str
) -> None:
    module = LLMModule.configure(ClientConfig(provider=my_provider, model="m"))
    async with Application.boot(modules=[module]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        assert isinstance(llm, MyClient)
        assert (await llm.complete(HELLO)).unwrap().content == "mine"
        registry = await app.container.resolve(ProviderRegistry)
        assert my_provider in registry


async def test_a_private_registry_stays_private(no_keys: Path) -> None:
    private = ProviderRegistry(private=True)
    assert private.private and not ProviderRegistry().private
    private.register("only_here", MyClient)
    assert "only_here" in private and "only_here" not in ProviderRegistry()
    assert "openai" in private  # built-ins included
    with pytest.raises(UnknownProviderError, match="only_here"):
        create_llm_client(ClientConfig(provider="only_here"))
    client = create_llm_client(ClientConfig(provider="only_here"), registry=private)
    assert (await client.complete(HELLO)).unwrap().content == "mine"
    module = LLMModule.configure(ClientConfig(provider="only_here"), registry=private)
    async with Application.boot(modules=[module]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        assert (await llm.complete(HELLO)).unwrap().content == "mine"
    assert ProviderRegistry(include_builtins=False).names() == []


def test_a_class_that_is_not_an_llm_client_is_refused_naming_the_protocol() -> None:
    class NotAClient:
        async def complete(self, messages: Any, **kwargs: Any) -> Any:
            return None

    registry = ProviderRegistry(private=True)
    with pytest.raises(TypeError, match=r"LLMClientProtocol.*stream_chat"):
        registry.register("half", NotAClient)
    assert "half" not in registry
    with pytest.raises(TypeError, match="LLMClientProtocol"):
        registry.register("nothing", "not callable")  # type: ignore[arg-type]
    # A factory is checked on what it builds.
    registry.register("factory", lambda config, **policies: object())
    with pytest.raises(TypeError, match="LLMClientProtocol"):
        registry.create(ClientConfig(provider="factory"))
    # A client that has every method of the protocol is welcome without our base class.
    registry.register("duck", DuckClient)
    assert isinstance(registry.create(ClientConfig(provider="duck")), DuckClient)


def test_the_original_provider_names_are_aliases(no_keys: Path) -> None:
    registry = ProviderRegistry()
    assert "aws-bedrock" in registry and "google-vertex" in registry
    bedrock = create_llm_client(
        ClientConfig(
            provider="aws-bedrock", model="anthropic.claude-3-haiku", extra={"region": "us-east-1"}
        )
    )
    assert bedrock.provider_name == "bedrock" and bedrock.config.provider == "bedrock"
    vertex = create_llm_client(
        ClientConfig(
            provider="google-vertex",
            model="gemini-2.5-pro",
            extra={"project": "p", "location": "us-central1"},
        )
    )
    assert vertex.provider_name == "vertex"
    assert registry.profile("google-vertex") is registry.profile("vertex")
    assert "aws-bedrock" not in registry.names()  # listed once, under its own name


# -- the default provider --------------------------------------------------------------------


async def test_an_api_key_with_no_provider_uses_openai_and_says_so(
    no_keys: Path,
    server: OpenAIServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="lexigram.ai.llm")
    client = create_llm_client(
        ClientConfig(api_key="sk-explicit", model="gpt-4o", api_base=server.url + "/v1")
    )
    assert client.provider_name == "openai"
    assert "no LLM provider: using 'openai'" in caplog.text
    server.script(Reply(text="from openai"))
    assert (await client.complete(HELLO)).unwrap().content == "from openai"
    assert server.requests[-1].headers["authorization"] == "Bearer sk-explicit"
    await client.close()
    # The same through the environment, as the guide advises.
    monkeypatch.setenv("LEX_AI_LLM__API_KEY", "sk-from-env")
    monkeypatch.setenv("LEX_AI_LLM__API_BASE", server.url + "/v1")
    client = create_llm_client()
    assert client.provider_name == "openai"
    assert (await client.complete(HELLO)).is_ok()
    assert server.requests[-1].headers["authorization"] == "Bearer sk-from-env"
    await client.close()


async def test_booting_llm_module_without_the_key_warns_naming_the_variable(
    no_keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lexigram.ai.llm")
    module = LLMModule.configure(ClientConfig(provider="anthropic", model="claude-sonnet-4"))
    async with Application.boot(modules=[module]):
        pass
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'anthropic' has no API key" in warnings[0].getMessage()
    assert "ANTHROPIC_API_KEY" in warnings[0].getMessage()
    caplog.clear()
    keyed = ClientConfig(provider="anthropic", model="claude-sonnet-4", api_key="sk-ant-x")
    async with Application.boot(modules=[LLMModule.configure(keyed)]):
        pass
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


# -- counters, chunks and costs ----------------------------------------------------------------


def test_token_counter_registry_takes_the_name_first() -> None:
    registry = TokenCounterRegistry()
    counter = CharEstimateCounter()
    registry.register("gpt-4", counter)
    registry.register("acme-*", counter)  # a glob stays a pattern
    assert registry.get("gpt-4") is counter
    assert registry.get("acme-large") is counter
    assert registry.get("gpt-4-turbo") is registry.fallback  # a name is exact
    registry.register(counter, model="today")  # today's form still works
    assert registry.get("today") is counter
    with pytest.raises(TypeError, match="name"):
        registry.register("gpt-4", counter, model="gpt-4")


async def test_stream_chunk_content_is_the_text_delta(server: OpenAIServer) -> None:
    server.script(Reply(text="Hello from the loopback server.", chunk_chars=4))
    client = create_llm_client(
        ClientConfig(
            provider="openai", model="gpt-4o", api_key="sk-test", api_base=server.url + "/v1"
        )
    )
    chunks = [chunk async for chunk in client.stream_chat(HELLO)]
    await client.close()
    assert all(chunk.content == chunk.delta for chunk in chunks)
    assert "".join(chunk.content for chunk in chunks) == "Hello from the loopback server."


def test_a_cost_estimate_is_an_object_with_its_parts_and_its_price_list() -> None:
    estimate = estimate_cost("gpt-4o", prompt_tokens=1_000_000, completion_tokens=500_000)
    assert isinstance(estimate, CostEstimate)
    assert estimate.input_cost == pytest.approx(2.5)
    assert estimate.output_cost == pytest.approx(5.0)
    assert estimate.total_cost == pytest.approx(7.5)
    assert float(estimate) == estimate.total_cost
    assert estimate.currency == "USD" and estimate.model == "gpt-4o"
    # Where the price comes from: genai-prices' release when it is installed (the prices
    # extra), else the model table's date and the provider's pricing page.
    assert estimate.as_of is not None and estimate.source is not None
    table_only = estimate_cost("gpt-4o", prompt_tokens=1, prices="table")
    assert table_only.as_of == model_table().as_of is not None
    assert table_only.source == model_table().sources["openai"]
    # The counters give the same object.
    counted = TiktokenCounter(model="gpt-4o").estimate_cost(
        prompt_tokens=1_000_000, completion_tokens=500_000
    )
    assert counted == estimate
    registry = TokenCounterRegistry.default()
    assert registry.estimate_cost(prompt_tokens=1000, model="gpt-4o").total_cost > 0


# -- extras ----------------------------------------------------------------------------------------


def test_the_documented_extras_are_declared() -> None:
    """``pip install 'lexigram-ai-llm[groq]'`` (and the others the documentation names) must
    resolve: an undeclared extra is a warning from pip and an error from uv."""
    from importlib.metadata import metadata

    extras = set(metadata("lexigram-ai-llm").get_all("Provides-Extra") or [])
    assert {"openai", "anthropic", "groq", "mistral", "ollama", "cohere", "gemini"} <= extras
    assert {"otel", "mcp", "all"} <= extras
