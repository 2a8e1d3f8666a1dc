"""Prices from the ``genai-prices`` package (the ``prices`` extra): the same numbers as its own
``calc_price``, tiers and cache prices, our table for what it lacks and without it, the escape
hatch, the saved prices that spare a process the import, and that nothing imports it early."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.conformance import SECRET
from harness.gemini_server import GeminiServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.exceptions import ConfigurationError
from lexigram.ai.llm.pricing import (
    ENV_VAR,
    GENAI_PROVIDERS,
    PRICES_ENV_VAR,
    ModelInfo,
    UnknownModelError,
    estimate_cost,
    model_price,
    model_table,
    price_source,
    set_model_table,
    set_price_source,
    usage_cost,
)
from lexigram.ai.llm.types import Usage

genai_prices = pytest.importorskip("genai_prices")
RELEASE = f"genai-prices {genai_prices.__version__}"


@pytest.fixture(autouse=True)
def default_sources(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(PRICES_ENV_VAR, raising=False)
    set_model_table(None)
    set_price_source(None)
    yield
    set_model_table(None)
    set_price_source(None)


def oracle(
    model: str, provider_id: str, prompt: int, completion: int, cached: int = 0, written: int = 0
) -> Any:
    """genai-prices' own price for the call (``Decimal`` parts)."""
    usage = genai_prices.Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )
    return genai_prices.calc_price(usage, model, provider_id=provider_id)


# -- the same numbers as genai-prices ---------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "prompt", "completion", "cached", "written"),
    [
        ("openai", "gpt-4o-2024-08-06", 12_000, 800, 4_000, 0),
        ("openai_responses", "gpt-5", 30_000, 5_000, 10_000, 0),
        ("azure-openai", "gpt-4o", 5_000, 200, 1_000, 0),
        ("anthropic", "claude-sonnet-4-5", 10_000, 1_000, 6_000, 2_000),
        ("gemini", "gemini-2.5-pro", 250_000, 2_000, 50_000, 0),
        ("gemini", "gemini-2.5-flash", 3_000, 500, 1_000, 0),
        ("vertex", "claude-sonnet-4@20250514", 5_000, 300, 1_000, 500),
        ("bedrock", "us.anthropic.claude-3-5-sonnet-20240620-v1:0", 5_000, 300, 1_000, 500),
        ("groq", "llama-3.3-70b-versatile", 2_000, 100, 0, 0),
        ("mistral", "mistral-large-latest", 2_000, 100, 0, 0),
        ("deepseek", "deepseek-chat", 4_000, 1_000, 1_000, 0),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", 4_000, 1_000, 0, 0),
        ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", 4_000, 1_000, 0, 0),
        ("xai", "grok-4", 4_000, 1_000, 1_000, 0),
        ("openrouter", "openai/gpt-4o-mini", 4_000, 1_000, 1_000, 0),
        ("cohere", "command-r-plus", 4_000, 1_000, 0, 0),
    ],
)
def test_a_price_equals_genai_prices_own_calc_price(
    provider: str, model: str, prompt: int, completion: int, cached: int, written: int
) -> None:
    expected = oracle(model, GENAI_PROVIDERS[provider], prompt, completion, cached, written)
    estimate = estimate_cost(
        model,
        provider=provider,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        cache_creation_tokens=written,
    )
    assert estimate.input_cost == pytest.approx(float(expected.input_price), rel=1e-12)
    assert estimate.output_cost == pytest.approx(float(expected.output_price), rel=1e-12)
    assert estimate.total_cost == pytest.approx(float(expected.total_price), rel=1e-12)
    assert estimate.model == expected.model.id
    assert estimate.as_of == RELEASE
    assert estimate.source is not None and estimate.source.startswith(RELEASE)
    usage = Usage.of(prompt, completion, cached_tokens=cached, cache_creation_tokens=written)
    assert usage_cost(usage, model, provider=provider) == pytest.approx(estimate.total_cost)


def test_a_gemini_prompt_over_200k_tokens_is_priced_at_its_second_tier() -> None:
    tiered = oracle("gemini-2.5-pro", "google", 1, 0).model_price.input_mtok
    assert tiered.tiers and tiered.tiers[0].start == 200_000  # the data this test is about
    base, second = float(tiered.base), float(tiered.tiers[0].price)
    assert second > base
    at_limit = estimate_cost("gemini-2.5-pro", provider="gemini", prompt_tokens=200_000)
    assert at_limit.input_cost == pytest.approx(200_000 * base / 1e6)
    over = estimate_cost(
        "gemini-2.5-pro", provider="gemini", prompt_tokens=250_000, completion_tokens=1_000
    )
    # The whole call at the second tier, as Google bills it and genai-prices counts it.
    assert over.input_cost == pytest.approx(250_000 * second / 1e6)
    assert over.total_cost == pytest.approx(
        float(oracle("gemini-2.5-pro", "google", 250_000, 1_000).total_price)
    )
    assert over.source is not None and over.source.startswith(RELEASE)


def test_cache_reads_and_writes_are_priced_at_their_own_rates() -> None:
    def cost(cached: int, written: int) -> float:
        return estimate_cost(
            "claude-sonnet-4-5",
            provider="anthropic",
            prompt_tokens=10_000,
            completion_tokens=100,
            cached_tokens=cached,
            cache_creation_tokens=written,
        ).total_cost

    plain, read, write = cost(0, 0), cost(8_000, 0), cost(0, 8_000)
    assert read < plain < write  # reads are cheaper than input, writes dearer
    for cached, written in ((8_000, 0), (0, 8_000), (3_000, 5_000)):
        expected = oracle("claude-sonnet-4-5", "anthropic", 10_000, 100, cached, written)
        assert cost(cached, written) == pytest.approx(float(expected.total_price), rel=1e-12)


# -- through the client, over loopback HTTP ---------------------------------------------------


@pytest_asyncio.fixture
async def anthropic_server() -> AsyncIterator[AnthropicServer]:
    server = AnthropicServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def gemini_server() -> AsyncIterator[GeminiServer]:
    server = GeminiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _client(provider: str, url: str, model: str) -> Any:
    return create_llm_client(
        ClientConfig(
            provider=provider,
            model=model,
            api_base=url,
            api_key=SecretStr(SECRET),
            max_retries=0,
        )
    )


async def test_a_completion_with_cache_tokens_costs_what_genai_prices_says(
    anthropic_server: AnthropicServer,
) -> None:
    anthropic_server.cache_creation_tokens = 1_500
    anthropic_server.script(
        Reply(text="ok", prompt_tokens=2_100, cached_tokens=500, completion_tokens=20)
    )
    async with _client("anthropic", anthropic_server.url, "claude-haiku-4-5") as llm:
        completion = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap()
    expected = oracle("claude-haiku-4-5", "anthropic", 2_100, 20, 500, 1_500)
    assert completion.cost == pytest.approx(float(expected.total_price), rel=1e-12)


async def test_a_long_gemini_call_costs_genai_prices_second_tier(
    gemini_server: GeminiServer,
) -> None:
    gemini_server.script(
        Reply(text="ok", prompt_tokens=300_000, cached_tokens=100_000, completion_tokens=2_000)
    )
    async with _client("gemini", gemini_server.url, "gemini-2.5-pro") as llm:
        completion = (await llm.complete([{"role": "user", "content": "hi"}])).unwrap()
    assert completion.usage.cached_tokens == 100_000
    expected = oracle("gemini-2.5-pro", "google", 300_000, 2_000, 100_000)
    assert completion.cost == pytest.approx(float(expected.total_price), rel=1e-12)


# -- what genai-prices lacks, and what the user gave ------------------------------------------


def test_a_model_genai_prices_lacks_is_priced_from_the_table() -> None:
    with pytest.raises(LookupError):
        oracle("codestral", "mistral", 1, 1)  # the premise: genai-prices has no codestral
    table = model_table()
    estimate = estimate_cost(
        "codestral", provider="mistral", prompt_tokens=1_000_000, completion_tokens=1_000_000
    )
    info = table.require("codestral", "mistral")
    assert info.input_per_mtok is not None and info.output_per_mtok is not None
    assert estimate.total_cost == pytest.approx(info.input_per_mtok + info.output_per_mtok)
    assert estimate.source == table.sources["mistral"] and estimate.as_of == table.as_of
    price = model_price("codestral", "mistral")
    assert price is not None and price.origin == "table"
    # Local models are never genai-prices' to price.
    local = model_price("smollm2-135m-instruct", "local")
    assert local is not None and local.origin == "table"
    # Nobody prices it: no cost, and the estimate says how to add one.
    assert usage_cost(Usage.of(10, 10), "my-own-model", provider="openai") is None
    with pytest.raises(UnknownModelError, match="register"):
        estimate_cost("my-own-model", provider="openai", prompt_tokens=1)


def test_a_price_the_user_registered_comes_before_genai_prices() -> None:
    model_table().register(ModelInfo("gpt-4o", "openai", 1.0, 2.0))
    estimate = estimate_cost(
        "gpt-4o", provider="openai", prompt_tokens=1_000_000, completion_tokens=1_000_000
    )
    assert estimate.total_cost == pytest.approx(3.0)
    assert estimate.source == model_table().sources["openai"]
    # The bundled entry it replaced did not come first: genai-prices did.
    set_model_table(None)
    assert estimate_cost("gpt-4o", provider="openai", prompt_tokens=1).as_of == RELEASE


def test_a_price_is_resolved_once_and_again_after_an_edit() -> None:
    first = model_price("gpt-4o-mini", "openai")
    assert first is not None and first.origin == "genai-prices"
    assert model_price("gpt-4o-mini", "openai") is first
    model_table().register(ModelInfo("unrelated-model", None, 1.0, 1.0))
    again = model_price("gpt-4o-mini", "openai")
    assert again == first and again is not first


def _future_price_change() -> tuple[str, str, date] | None:
    """A (provider, model, date) whose genai-prices price changes after today."""
    today = datetime.now(UTC).date()
    snapshot = genai_prices.data_snapshot.get_snapshot()
    ours = {genai_id: name for name, genai_id in GENAI_PROVIDERS.items()}
    for provider in snapshot.providers:
        if provider.id not in ours:
            continue
        for model in provider.models:
            if not isinstance(model.prices, list):
                continue
            dates = [
                c.constraint.start_date
                for c in model.prices
                if getattr(c.constraint, "start_date", None) is not None
                and c.constraint.start_date > today
            ]
            times = [c for c in model.prices if getattr(c.constraint, "start_time", None)]
            if dates and not times:
                return ours[provider.id], model.id, min(dates)
    return None


def test_a_dated_price_change_ends_a_resolved_price() -> None:
    found = _future_price_change()
    if found is None:
        pytest.skip("no dated price change ahead in this genai-prices version")
    provider, model, when = found
    price = model_price(model, provider)
    assert price is not None and price.origin == "genai-prices"
    assert price.expires == datetime(when.year, when.month, when.day, tzinfo=UTC).timestamp()
    # A daily window (DeepSeek's off-peak prices) ends within the day.
    window = model_price("deepseek-chat", "deepseek")
    assert window is not None
    assert 0 < window.expires - datetime.now(UTC).timestamp() <= 86_400
    assert math.isinf(model_price("gpt-4o", "openai").expires)  # type: ignore[union-attr]


# -- the escape hatch -------------------------------------------------------------------------


def test_prices_from_the_table_only_when_asked() -> None:
    table = model_table()
    info = table.require("gemini-2.5-pro")
    assert info.tiers and info.tiers[0].cached_input_per_mtok is not None
    by_table = estimate_cost(
        "gemini-2.5-pro",
        provider="gemini",
        prompt_tokens=250_000,
        cached_tokens=50_000,
        prices="table",
    )
    tier = info.tiers[0]
    assert tier.cached_input_per_mtok is not None
    assert by_table.input_cost == pytest.approx(
        (200_000 * tier.input_per_mtok + 50_000 * tier.cached_input_per_mtok) / 1e6
    )
    assert by_table.source == table.sources["gemini"] and by_table.as_of == table.as_of
    by_default = estimate_cost(
        "gemini-2.5-pro", provider="gemini", prompt_tokens=250_000, cached_tokens=50_000
    )
    assert by_default.as_of == RELEASE and by_default.input_cost != by_table.input_cost
    assert set_price_source("table") == "table" == price_source()
    assert (
        estimate_cost(
            "gemini-2.5-pro", provider="gemini", prompt_tokens=250_000, cached_tokens=50_000
        )
        == by_table
    )
    assert set_price_source(None) == "auto"
    with pytest.raises(ConfigurationError, match="'auto'"):
        estimate_cost("gpt-4o", prompt_tokens=1, prices="genai")  # type: ignore[arg-type]


def test_a_bad_price_source_in_the_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PRICES_ENV_VAR, "cheapest")
    with pytest.raises(ConfigurationError, match=PRICES_ENV_VAR):
        set_price_source(None)
    monkeypatch.setenv(PRICES_ENV_VAR, "Table")
    assert set_price_source(None) == "table"


def test_never_the_network_auto_update() -> None:
    assert estimate_cost("gpt-4o", provider="openai", prompt_tokens=1).as_of == RELEASE
    assert "genai_prices:update" not in {t.name for t in threading.enumerate()}
    assert genai_prices.wait_prices_updated_sync(0) is False  # no updater was started


# -- in fresh interpreters --------------------------------------------------------------------

_NO_GENAI = 'import sys; sys.modules["genai_prices"] = None\n'


def _run(code: str, home: Path, *, prelude: str = "", **env: str) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON value, returned here."""
    environ = {k: v for k, v in os.environ.items() if k not in (PRICES_ENV_VAR, ENV_VAR)}
    environ.update(LEXIGRAM_LLM_HOME=str(home), **env)
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


_PRICE_GEMINI = """
import json, sys, threading
from lexigram.ai.llm.pricing import estimate_cost, model_table
model_table().lookup("gemini-2.5-pro", "gemini")
e = estimate_cost("gemini-2.5-pro", provider="gemini", prompt_tokens=250_000, cached_tokens=50_000)
print(json.dumps({"input": e.input_cost, "source": e.source, "as_of": e.as_of,
                  "imported": sys.modules.get("genai_prices") is not None,
                  "threads": sorted(t.name for t in threading.enumerate())}))
"""


def _table_gemini_input() -> float:
    tier = model_table().require("gemini-2.5-pro").tiers[0]
    assert tier.cached_input_per_mtok is not None
    return (200_000 * tier.input_per_mtok + 50_000 * tier.cached_input_per_mtok) / 1e6


def test_without_genai_prices_the_table_prices(tmp_path: Path) -> None:
    table = model_table()
    out = _run(_PRICE_GEMINI, tmp_path, prelude=_NO_GENAI)
    assert out["input"] == pytest.approx(_table_gemini_input())
    assert out["source"] == table.sources["gemini"] and out["as_of"] == table.as_of
    assert not out["imported"] and "lexigram-prices-load" not in out["threads"]


def test_lexigram_prices_table_never_imports_genai_prices(tmp_path: Path) -> None:
    out = _run(_PRICE_GEMINI, tmp_path, **{PRICES_ENV_VAR: "table"})
    assert out["input"] == pytest.approx(_table_gemini_input())
    assert out["as_of"] == model_table().as_of and not out["imported"]


def test_importing_the_library_does_not_import_genai_prices(tmp_path: Path) -> None:
    code = """
import json, sys
import lexigram.ai.llm
from lexigram.ai.llm import ClientConfig, create_llm_client
import lexigram.ai.llm.pricing as pricing
from lexigram.ai.llm.types import Usage
create_llm_client(ClientConfig(provider="openai", model="gpt-4o", api_key="sk-x"))
# A local model's price and look-ups: genai-prices has nothing to say about them.
pricing.model_table().lookup("smollm2-135m-instruct", "local")
pricing.model_table().lookup("llama3.2", "ollama")
cost = pricing.usage_cost(Usage.of(10, 10), "smollm2-135m-instruct", provider="local")
print(json.dumps({"imported": "genai_prices" in sys.modules, "cost": cost}))
"""
    out = _run(code, tmp_path)
    assert out == {"imported": False, "cost": out["cost"]} and out["cost"] is not None


def test_the_first_look_up_loads_genai_prices_in_the_background(tmp_path: Path) -> None:
    code = """
import json, sys, threading
from lexigram.ai.llm.pricing import model_table
model_table().lookup("gpt-4o", "openai")
loading = [t for t in threading.enumerate() if t.name == "lexigram-prices-load"]
for thread in loading:
    thread.join()
print(json.dumps({"loading": len(loading), "imported": "genai_prices" in sys.modules}))
"""
    assert _run(code, tmp_path) == {"loading": 1, "imported": True}


def test_a_price_resolved_before_spares_the_next_process_the_import(tmp_path: Path) -> None:
    first = _run(_PRICE_GEMINI, tmp_path)
    assert first["imported"] and first["source"].startswith(RELEASE)
    saved = tmp_path / "cache" / "genai-prices.json"
    assert saved.is_file()
    second = _run(_PRICE_GEMINI, tmp_path)
    assert not second["imported"] and "lexigram-prices-load" not in second["threads"]
    assert {k: second[k] for k in ("input", "source", "as_of")} == {
        k: first[k] for k in ("input", "source", "as_of")
    }
    # Saved for another copy of genai-prices' data: not used.
    data = json.loads(saved.read_text())
    data["stamp"] = "another-install"
    for entry in data["prices"].values():
        if entry is not None:
            entry["prices"] = [99.0, 99.0, 99.0, 99.0]
    saved.write_text(json.dumps(data))
    third = _run(_PRICE_GEMINI, tmp_path)
    assert third["imported"] and third["input"] == pytest.approx(first["input"])
    # And without genai-prices installed, saved prices are not used either.
    gone = _run(_PRICE_GEMINI, tmp_path, prelude=_NO_GENAI)
    assert gone["as_of"] == model_table().as_of


def test_the_first_prices_from_several_threads_agree(tmp_path: Path) -> None:
    code = """
import json, threading
from lexigram.ai.llm.pricing import usage_cost
from lexigram.ai.llm.types import Usage
usage = Usage.of(300_000, 1_000, cached_tokens=1_000)
results, start = [], threading.Barrier(8)
def price():
    start.wait()
    results.append(usage_cost(usage, "gemini-2.5-pro", provider="gemini"))
threads = [threading.Thread(target=price) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"""
    results = _run(code, tmp_path)
    expected = oracle("gemini-2.5-pro", "google", 300_000, 1_000, 1_000).total_price
    assert results == [pytest.approx(float(expected), rel=1e-12)] * 8
