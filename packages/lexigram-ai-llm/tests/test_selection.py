"""``ModelSelector``: choices for a table of requests (context window, capabilities, max cost,
quality tier, presets, fallback chain), and the selector as a router strategy over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, ModelSelector, ModelSelectorStrategy
from lexigram.ai.llm.pricing import ModelTable, UnknownModelError
from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute
from lexigram.ai.llm.tokens import CharEstimateCounter
from lexigram.ai.llm.types import ChatRequest, ResponseFormat, normalize_messages
from lexigram.result import Ok

# A table of its own, so that price updates of the bundled one never move these choices.
TABLE = ModelTable.from_dict(
    {
        "models": {
            "small": {
                "input": 0.1,
                "output": 0.4,
                "context_window": 16000,
                "max_output_tokens": 4096,
                "capabilities": {"vision": False, "tools": True, "json_schema": True},
                "quality": 2,
            },
            "mid": {
                "input": 1.0,
                "output": 4.0,
                "context_window": 128000,
                "max_output_tokens": 16384,
                "capabilities": {
                    "vision": True,
                    "tools": True,
                    "json_schema": True,
                    "reasoning": False,
                },
                "quality": 4,
            },
            "big": {
                "input": 5.0,
                "output": 20.0,
                "context_window": 200000,
                "max_output_tokens": 64000,
                "capabilities": {
                    "vision": True,
                    "pdf": True,
                    "tools": True,
                    "json_schema": True,
                    "reasoning": True,
                },
                "quality": 5,
            },
            "long": {
                "input": 0.5,
                "output": 2.0,
                "context_window": 1000000,
                "max_output_tokens": 8192,
                "capabilities": {"vision": True, "tools": False},
                "quality": 3,
            },
            "unpriced": {"context_window": 32000, "capabilities": {"tools": True}, "quality": 3},
        }
    }
)
MODELS = ["small", "mid", "big", "long", "unpriced"]

HI = [{"role": "user", "content": "hi"}]
IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        ],
    }
]
LONG = [{"role": "user", "content": "word " * 240_000}]  # ~300k tokens by size
TOOL = {"name": "weather", "parameters": {"type": "object", "properties": {}}}
SCHEMA = ResponseFormat(type="json_schema", schema={"type": "object"})

CASES: list[tuple[str, str, list[Any], dict[str, Any], list[str]]] = [
    # (case, preset, messages, conditions, expected order)
    ("cheapest first", "cost", HI, {}, ["small", "long", "mid", "big", "unpriced"]),
    ("best first", "quality", HI, {}, ["big", "mid", "long", "unpriced", "small"]),
    # balanced: quality minus log10(price / cheapest): big 5-1.7, mid 4-1, long 3-0.7, small 2.
    ("balanced", "balanced", HI, {}, ["big", "mid", "long", "small", "unpriced"]),
    ("an image needs vision", "cost", IMAGE, {}, ["long", "mid", "big"]),
    ("an image and tools", "cost", IMAGE, {"tools": [TOOL]}, ["mid", "big"]),
    ("a JSON schema", "cost", HI, {"response_format": SCHEMA}, ["small", "mid", "big"]),
    ("a 300k-token prompt", "quality", LONG, {}, ["long"]),
    ("at most $0.005 a call", "quality", HI, {"max_cost": 0.005}, ["mid", "long", "small"]),
    ("quality 4 or better", "cost", HI, {"min_quality": 4}, ["mid", "big"]),
    ("needs reasoning", "cost", HI, {"needs": ["reasoning"]}, ["big"]),
    ("10k output tokens", "cost", HI, {"max_tokens": 10000}, ["mid", "big", "unpriced"]),
    ("nothing fits", "cost", IMAGE, {"needs": ["reasoning"], "max_cost": 0.0001}, []),
]


def _select(preset: str, messages: list[Any], conditions: dict[str, Any]) -> list[str]:
    conditions = dict(conditions)
    weight = conditions.pop("cost_weight", 1.0)
    selector = ModelSelector(MODELS, preset=preset, table=TABLE, cost_weight=weight)
    return [c.model for c in selector.select(messages, **conditions)]


@pytest.mark.parametrize(
    ("preset", "messages", "conditions", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_selector_choices_for_a_table_of_requests(
    preset: str, messages: list[Any], conditions: dict[str, Any], expected: list[str]
) -> None:
    assert _select(preset, messages, conditions) == expected


def test_a_heavier_cost_weight_moves_balanced_towards_cheap_models() -> None:
    # Weight 3: big 5-5.1, mid 4-3, long 3-2.1, small 2: the cheapest leads, the dearest trails.
    assert _select("balanced", HI, {"cost_weight": 3.0}) == [
        "small",
        "mid",
        "long",
        "big",
        "unpriced",
    ]


def test_a_request_object_and_the_selectors_own_conditions() -> None:
    request = ChatRequest(messages=normalize_messages(IMAGE), model="", max_tokens=100)
    selector = ModelSelector(MODELS, preset="cost_optimised", table=TABLE, min_quality=4)
    ranked = selector.select(request)
    assert [c.model for c in ranked] == ["mid", "big"]
    first = ranked[0]
    # The prompt estimated by size (the image counted too) plus the 100 output tokens.
    prompt = int(CharEstimateCounter().count_messages(request.messages))
    assert prompt > 100
    assert first.estimated_cost == TABLE.require("mid").cost(prompt, 100)
    assert (first.quality, first.context_window, first.fallback) == (4, 128000, False)
    # A call's own condition takes the selector's place.
    assert [c.model for c in selector.select(request, min_quality=5)] == ["big"]


def test_the_fallback_chain_comes_last_whatever_the_conditions() -> None:
    selector = ModelSelector(
        MODELS, preset="quality", table=TABLE, fallback=["small", "someone-elses-model"]
    )
    ranked = selector.select(IMAGE, needs="reasoning")
    assert [(c.model, c.fallback) for c in ranked] == [
        ("big", False),
        ("small", True),
        ("someone-elses-model", True),
    ]
    assert selector.choose(IMAGE, needs="reasoning") == "big"
    with pytest.raises(LookupError, match="no candidate model fits"):
        ModelSelector(MODELS, table=TABLE).choose(LONG, needs=["reasoning"])


def test_bad_selectors_are_refused_at_once() -> None:
    with pytest.raises(UnknownModelError):
        ModelSelector(["no-such-model"], table=TABLE)
    with pytest.raises(ValueError, match="unknown preset"):
        ModelSelector(MODELS, preset="cheap", table=TABLE)
    with pytest.raises(ValueError, match="unknown capabilities"):
        ModelSelector(MODELS, table=TABLE, needs=["telepathy"])
    with pytest.raises(ValueError):
        ModelSelector(MODELS, table=TABLE, max_cost=-1)


def test_without_a_list_the_selector_ranks_the_rated_models_of_the_bundled_table() -> None:
    ranked = ModelSelector(preset="quality").select(IMAGE, tools=[TOOL], needs=["reasoning"])
    assert ranked and all(c.quality == 5 for c in ranked[:3])
    names = {c.model for c in ranked}
    assert "gpt-3.5-turbo" not in names and "text-embedding-3-small" not in names
    assert "gpt-5" in names and "claude-sonnet-4-5" in names


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.mark.parametrize(("preset", "served"), [("cost", "gpt-4o-mini"), ("quality", "gpt-4o")])
async def test_the_selector_as_a_router_strategy(
    server: OpenAIServer, preset: str, served: str
) -> None:
    route = {"provider": "openai", "base_url": server.url + "/v1", "api_key": "sk-route"}
    config = LLMConfig(
        providers=[
            ProviderRoute(name="strong", model="gpt-4o", priority=0, **route),
            ProviderRoute(name="cheap", model="gpt-4o-mini", priority=1, **route),
            ProviderRoute(name="unknown", model="house-model", priority=2, **route),
        ]
    )
    strategy = ModelSelectorStrategy(ModelSelector(preset=preset))
    router = LLMRouter.from_config(config, default=ClientConfig(max_retries=0), strategy=strategy)
    try:
        server.script(Reply(text="ok"))
        result = await router.complete(HI)
        assert isinstance(result, Ok), result
        assert [r.json["model"] for r in server.requests] == [served]
        # A model the table does not know is still tried, after the ranked ones.
        ranked = strategy.order(router.routes, router.build_request(HI), {})
        assert ranked[-1].name == "unknown"
    finally:
        await router.close()
