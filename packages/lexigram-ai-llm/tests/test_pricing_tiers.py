"""Tiered prices in the model table: a Gemini prompt over 200k tokens is billed at the second
tier, both by ``estimate_cost`` and for a real call's ``Completion.cost`` over loopback HTTP.
(The same from genai-prices' data: ``test_pricing_genai.py``.)"""

from __future__ import annotations

import pytest
from harness.conformance import SECRET
from harness.gemini_server import GeminiServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.pricing import ModelInfo, PriceTier, estimate_cost, model_table


def test_gemini_prompt_over_200k_tokens_is_priced_at_its_second_tier() -> None:
    short = estimate_cost(
        "gemini-2.5-pro", prompt_tokens=200_000, completion_tokens=1_000, prices="table"
    )
    assert short.input_cost == pytest.approx(200_000 * 1.25 / 1e6)
    assert short.output_cost == pytest.approx(1_000 * 10.0 / 1e6)
    long = estimate_cost(
        "gemini-2.5-pro",
        prompt_tokens=250_000,
        completion_tokens=1_000,
        cached_tokens=50_000,
        prices="table",
    )
    # The whole call at the long-context prices, cache reads at that tier's read price.
    assert long.input_cost == pytest.approx((200_000 * 2.5 + 50_000 * 0.625) / 1e6)
    assert long.output_cost == pytest.approx(1_000 * 15.0 / 1e6)
    assert long.total_cost == pytest.approx(long.input_cost + long.output_cost)
    flash = estimate_cost("gemini-1.5-flash", prompt_tokens=130_000, prices="table")
    assert flash.input_cost == pytest.approx(130_000 * 0.15 / 1e6)


def test_tiers_round_trip_through_the_data_file_form() -> None:
    info = model_table().require("gemini-2.5-pro")
    assert info.tiers == (PriceTier(200_000, 2.5, 15.0, 0.625),)
    assert ModelInfo.from_dict(info.name, info.to_dict()) == info
    written = ModelInfo(
        "x", None, 1.0, 2.0, cache_write_per_mtok=1.5, tiers=(PriceTier(10, 2.0, 4.0, 0.5, 3.0),)
    )
    assert ModelInfo.from_dict("x", written.to_dict()) == written
    # A tier's cache write price bills cache writes of a prompt over its threshold.
    assert written.cost(11, 0, cache_creation_tokens=11) == pytest.approx(11 * 3.0 / 1e6)
    assert written.cost(10, 0, cache_creation_tokens=10) == pytest.approx(10 * 1.5 / 1e6)
    with pytest.raises(ValueError, match="above"):
        ModelInfo.from_dict("x", {"input": 1, "output": 2, "tiers": [{"input": 1, "output": 2}]})


async def test_a_long_gemini_call_costs_its_second_tier_price() -> None:
    server = GeminiServer()
    await server.start()
    client = create_llm_client(
        ClientConfig(
            provider="gemini",
            model="gemini-2.5-pro",
            api_base=server.url,
            api_key=SecretStr(SECRET),
            max_retries=0,
        )
    )
    try:
        server.script(Reply(text="ok", prompt_tokens=300_000, completion_tokens=2_000))
        completion = (await client.complete([{"role": "user", "content": "hi"}])).unwrap()
        assert completion.usage.prompt_tokens == 300_000
        assert completion.cost == pytest.approx((300_000 * 2.5 + 2_000 * 15.0) / 1e6)
    finally:
        await client.close()
        await server.stop()
