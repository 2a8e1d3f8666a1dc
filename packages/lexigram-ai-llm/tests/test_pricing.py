"""The dated model table: lookups as providers name models, costs, replacing the table, and the
client using it for ``Completion.cost`` and the token-limit pre-flight (over real HTTP)."""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.openai_server import OpenAIServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.exceptions import ConfigurationError, TokenLimitError
from lexigram.ai.llm.pricing import (
    ENV_VAR,
    ModelInfo,
    ModelTable,
    UnknownModelError,
    context_window_for,
    estimate_cost,
    lookup_model,
    model_table,
    set_model_table,
    usage_cost,
)
from lexigram.ai.llm.types import Usage
from lexigram.result import Err, Ok


@pytest.fixture(autouse=True)
def default_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    set_model_table(None)
    yield
    set_model_table(None)


# -- the bundled file -------------------------------------------------------------------------


def test_bundled_table_is_dated_and_sourced() -> None:
    table = ModelTable.bundled()
    assert table.as_of is not None and len(table.as_of) == 10  # YYYY-MM-DD
    assert table.sources and all(url.startswith("https://") for url in table.sources.values())
    data = table.to_dict()
    providers = {entry.get("provider") for entry in data["models"].values()}
    assert providers <= set(table.sources), "every provider priced has a source"
    assert len(table) >= 40


@pytest.mark.parametrize(
    ("name", "provider", "expected"),
    [
        ("gpt-4o", None, "gpt-4o"),
        ("gpt-4o-2024-08-06", None, "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", None, "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "openrouter", "gpt-4o-mini"),
        ("gpt-4-0613", None, "gpt-4"),
        ("claude-sonnet-4-20250514", None, "claude-sonnet-4"),
        ("claude-sonnet-4@20250514", "vertex", "claude-sonnet-4"),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock", "claude-3-5-sonnet"),
        ("models/gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        ("gemini-1.5-pro-002", "gemini", "gemini-1.5-pro"),
        ("mistral-large-latest", "mistral", "mistral-large"),
        ("command-r-plus-08-2024", "cohere", "command-r-plus"),
        ("llama-3.3-70b-versatile", "groq", "groq/llama-3.3-70b-versatile"),
        ("GPT-4O", None, "gpt-4o"),
    ],
)
def test_lookup_accepts_names_as_providers_send_them(
    name: str, provider: str | None, expected: str
) -> None:
    info = lookup_model(name, provider)
    assert info is not None and info.name == expected


@pytest.mark.parametrize(
    "name",
    ["o1-preview", "gpt-4o-audio-preview", "claude-opus-4-6", "gemini-2.5-flash-image", "gpt-4.5"],
)
def test_a_different_model_is_never_priced_as_its_prefix(name: str) -> None:
    assert lookup_model(name) is None


def test_llama_on_groq_is_not_priced_without_the_provider() -> None:
    assert lookup_model("llama-3.3-70b-versatile") is None


def test_cost_splits_cached_and_cache_write_tokens() -> None:
    sonnet = lookup_model("claude-sonnet-4")
    assert sonnet is not None
    usage = Usage.of(10_000, 1_000, cached_tokens=6_000, cache_creation_tokens=2_000)
    expected = (2_000 * 3.0 + 6_000 * 0.3 + 2_000 * 3.75 + 1_000 * 15.0) / 1e6
    assert sonnet.usage_cost(usage) == pytest.approx(expected)
    assert sonnet.usage_cost(Usage()) is None  # nothing reported: no made-up zero
    estimate = estimate_cost("gpt-4o", prompt_tokens=2_000_000, completion_tokens=0)
    assert estimate.total_cost == pytest.approx(5.0) and estimate.output_cost == 0.0
    with pytest.raises(UnknownModelError):
        estimate_cost("no-such-model", prompt_tokens=1)
    assert usage_cost(Usage.of(1000, 1000), "unknown-model", "gpt-4o-mini") == pytest.approx(
        (1000 * 0.15 + 1000 * 0.6) / 1e6
    )


def test_context_windows() -> None:
    assert context_window_for("gpt-4") == 8192
    assert context_window_for("gpt-4.1-mini") == 1047576
    assert context_window_for("nothing-known") is None
    assert context_window_for("") is None


# -- replacing the table ----------------------------------------------------------------------


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_bytes(orjson.dumps(data))
    return path


def test_env_var_replaces_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(
        tmp_path / "models.json",
        {
            "as_of": "2030-01-01",
            "sources": {"acme": "https://acme.example/pricing"},
            "models": {
                "acme-1": {"provider": "acme", "input": 1.0, "output": 2.0, "context_window": 1000}
            },
        },
    )
    monkeypatch.setenv(ENV_VAR, str(path))
    table = set_model_table(None)
    assert table.as_of == "2030-01-01"
    assert lookup_model("acme-1") is not None
    assert lookup_model("gpt-4o") is None  # replaced, not merged


def test_a_table_may_extend_the_bundled_one(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "extra.json",
        {
            "extends": "bundled",
            "as_of": "2030-02-02",
            "models": {
                "gpt-4o": {"provider": "openai", "input": 1.0, "output": 1.0},
                "acme-2": {"input": 0.5, "output": 0.5},
            },
        },
    )
    set_model_table(path)
    assert model_table().as_of == "2030-02-02"
    assert lookup_model("acme-2") is not None
    gpt = lookup_model("gpt-4o")
    assert gpt is not None and gpt.input_per_mtok == 1.0
    assert lookup_model("claude-3-haiku") is not None


def test_register_overrides_one_model() -> None:
    table = model_table()
    assert lookup_model("my-finetune") is None
    table.register(ModelInfo("my-finetune", "openai", 1.0, 4.0, context_window=4096))
    info = lookup_model("my-finetune-2024-01-01")
    assert info is not None and info.context_window == 4096


def test_lookups_and_registers_from_several_threads() -> None:
    # A lookup that misses scans the table; a register in another thread used to change the
    # table's size under that scan ("dictionary changed size during iteration").
    table = ModelTable.bundled()
    count = 2000
    done = threading.Event()
    errors: list[BaseException] = []

    def look_up() -> None:
        try:
            while not done.is_set():
                for i in range(count):
                    table.lookup(f"race-model-{i}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    readers = [threading.Thread(target=look_up) for _ in range(2)]
    try:
        for reader in readers:
            reader.start()
        for i in range(count):
            table.register(ModelInfo(f"race-model-{i}", None, 1.0, 2.0))
            assert table.lookup(f"race-model-{i}") is not None
    finally:
        done.set()
        for reader in readers:
            reader.join()
        sys.setswitchinterval(interval)
    assert errors == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"models": []}', "'models' must be an object"),
        (b'{"models": {"x": {"input": -1}}}', "non-negative"),
        (b'{"models": {"x": {"context_window": 0}}}', "positive integer"),
    ],
)
def test_a_bad_table_file_is_a_configuration_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=message):
        ModelTable.from_file(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        ModelTable.from_file(tmp_path / "missing.json")


# -- the client uses it -----------------------------------------------------------------------


@pytest_asyncio.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _client(server: OpenAIServer, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "api_base": server.url + "/v1",
        "api_key": SecretStr("sk-test"),
        "max_retries": 0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


async def test_completion_cost_comes_from_the_table(server: OpenAIServer) -> None:
    server.script(Reply(text="hi", prompt_tokens=1200, completion_tokens=300, cached_tokens=200))
    async with _client(server) as llm:
        result = await llm.complete([{"role": "user", "content": "hello"}])
    assert isinstance(result, Ok)
    expected = (1000 * 2.5 + 200 * 1.25 + 300 * 10.0) / 1e6
    assert result.value.cost == pytest.approx(expected)


async def test_an_unpriced_model_has_no_cost(server: OpenAIServer) -> None:
    async with _client(server, model="my-own-model") as llm:
        result = await llm.complete([{"role": "user", "content": "hello"}])
    assert isinstance(result, Ok) and result.value.cost is None


async def test_preflight_refuses_before_any_request(server: OpenAIServer) -> None:
    long_prompt = "word " * 9000  # ~9000 tokens: more than gpt-4's 8192 window
    async with _client(server, model="gpt-4") as llm:
        result = await llm.complete([{"role": "user", "content": long_prompt}], max_tokens=100)
        assert isinstance(result, Err)
        assert isinstance(result.error, TokenLimitError)
        assert result.error.details["context_window"] == 8192
        assert server.requests == []
        stream = llm.stream_chat([{"role": "user", "content": long_prompt}])
        with pytest.raises(TokenLimitError):
            async for _ in stream:
                pass
        assert server.requests == []
        # Within the window it goes out.
        ok = await llm.complete([{"role": "user", "content": "word " * 100}], max_tokens=100)
        assert isinstance(ok, Ok) and len(server.requests) == 1


async def test_config_context_window_overrides_the_table(server: OpenAIServer) -> None:
    async with _client(server, model="my-own-model", context_window=50) as llm:
        result = await llm.complete([{"role": "user", "content": "word " * 200}])
        assert isinstance(result, Err) and isinstance(result.error, TokenLimitError)
        assert result.error.details["estimated"] is True  # unknown model: the estimate
        assert server.requests == []
