"""Pick a model for a request from its conditions: ``ModelSelector``.

A selector holds a list of candidate models (names the model table knows, optionally as
``(provider, model)``) and ranks them for one request::

    selector = ModelSelector(["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"], preset="balanced")
    ranked = selector.select(messages, tools=[weather], max_cost=0.01)
    ranked[0].model                       # the pick; the rest are the fallback chain

What rules a model out, each from the model table (``pricing.model_table()``):

- the prompt (estimated from its size) plus the output (``max_tokens``, else 512 tokens) does
  not fit the model's context window, or ``max_tokens`` is over the model's maximum output;
- the request needs a capability (images: ``vision``, PDF documents: ``pdf``, tools:
  ``tools``, a JSON-schema response format: ``json_schema``; ``needs=`` adds others such as
  ``reasoning`` or ``audio``) the table does not say the model has — a selector chooses only what
  it knows can serve (unlike the client's refusal, where unknown is allowed);
- the estimated cost of the call is over ``max_cost`` (an unpriced model is then ruled out);
- its quality tier is below ``min_quality`` (1 small .. 5 frontier; an unrated model is then
  ruled out).

The presets order what is left: ``"cost"`` (cost-optimised: cheapest first, better quality
breaking ties), ``"quality"`` (quality-optimised: highest tier first, cheaper breaking ties)
and ``"balanced"`` (quality tier minus ``cost_weight`` times log10 of the price relative to the
cheapest candidate: one tier is worth a tenfold price; unpriced models last). Models given as
``fallback=`` come after the ranked ones whatever the conditions (the last resort of a fallback
chain).

``ModelSelectorStrategy(selector)`` is a router strategy: routes ranked by their model the
same way, routes the selector rules out tried last, in priority order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lexigram.ai.llm.pricing import (
    CAPABILITIES,
    ModelInfo,
    ModelTable,
    model_table,
    request_capabilities,
)
from lexigram.ai.llm.routing.strategies import RoutingStrategy, by_priority
from lexigram.ai.llm.tokens import CharEstimateCounter
from lexigram.ai.llm.types import (
    ChatRequest,
    ResponseFormat,
    normalize_messages,
    normalize_tools,
)

if TYPE_CHECKING:
    from lexigram.ai.llm.routing.router import Route
    from lexigram.ai.llm.routing.state import RouteStats

__all__ = ["PRESETS", "Candidate", "ModelSelector", "ModelSelectorStrategy", "Preset"]

Preset = Literal["balanced", "cost", "quality"]
#: The preset names, with their long spellings accepted as aliases.
PRESETS: Mapping[str, Preset] = {
    "balanced": "balanced",
    "cost": "cost",
    "cost_optimized": "cost",
    "cost_optimised": "cost",
    "quality": "quality",
    "quality_optimized": "quality",
    "quality_optimised": "quality",
}

# Output length assumed when the request sets no ``max_tokens`` (as the cost strategy does).
_ASSUMED_OUTPUT_TOKENS = 512
_CHAR_ESTIMATE = CharEstimateCounter()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model a selector offers for a request, best first in ``select``'s list.

    ``estimated_cost`` is USD for this request (prompt by size plus the output tokens) from
    the model table (``None`` when unpriced); ``fallback`` marks a model from the selector's
    ``fallback`` chain, offered whatever the conditions."""

    model: str
    provider: str | None
    estimated_cost: float | None
    quality: int | None
    context_window: int | None
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class _Conditions:
    prompt_tokens: int
    output_tokens: int
    max_tokens: int | None
    needs: frozenset[str]
    max_cost: float | None
    min_quality: int | None


class ModelSelector:
    """Ranks candidate models for a request by its conditions and a preset (see the module
    docs). ``models`` defaults to every rated model of the table; ``fallback`` models are
    appended to every answer; ``max_cost``, ``min_quality`` and ``needs`` given here apply to
    every ``select`` (a call's own values take their place)."""

    def __init__(
        self,
        models: Iterable[str | tuple[str, str]] | None = None,
        *,
        preset: str = "balanced",
        fallback: Iterable[str | tuple[str, str]] = (),
        max_cost: float | None = None,
        min_quality: int | None = None,
        needs: Iterable[str] = (),
        cost_weight: float = 1.0,
        table: ModelTable | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
        if max_cost is not None and max_cost < 0:
            raise ValueError("max_cost must not be negative")
        if cost_weight < 0:
            raise ValueError("cost_weight must not be negative")
        self.preset: Preset = PRESETS[preset]
        self._table = table
        self.models: tuple[tuple[str | None, str], ...] = (
            tuple(_entry(m) for m in models) if models is not None else ()
        )
        self.fallback: tuple[tuple[str | None, str], ...] = tuple(_entry(m) for m in fallback)
        self.max_cost = max_cost
        self.min_quality = min_quality
        self.needs = _needs(needs)
        self.cost_weight = cost_weight
        # Every candidate must be in the table: a selector cannot judge a model it knows
        # nothing of (name it in ``fallback`` instead).
        for provider, name in self.models:
            self.table.require(name, provider)

    @property
    def table(self) -> ModelTable:
        """The model table the selector reads (the process-wide one unless given)."""
        return self._table if self._table is not None else model_table()

    def __repr__(self) -> str:
        names = [name for _, name in self.models] or "<every rated model>"
        return f"ModelSelector({names!r}, preset={self.preset!r})"

    def select(
        self,
        request_or_messages: ChatRequest | Sequence[Any],
        *,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        response_format: ResponseFormat | None = None,
        needs: Iterable[str] = (),
        max_cost: float | None = None,
        min_quality: int | None = None,
    ) -> list[Candidate]:
        """The candidates that can serve the request, best first, then the fallback chain.

        ``request_or_messages`` is a ``ChatRequest`` or the messages of a call (dicts or
        ``ChatMessage``); ``max_tokens``, ``tools`` and ``response_format`` describe the call
        when only messages are given. An empty list means nothing fits and no fallback is set.
        """
        if isinstance(request_or_messages, ChatRequest):
            request = request_or_messages
        else:
            request = ChatRequest(
                messages=normalize_messages(request_or_messages),
                model="",
                max_tokens=max_tokens,
                tools=normalize_tools(tools),
                response_format=response_format,
            )
        conditions = self._conditions(request, needs, max_cost, min_quality)
        entries = [(p, n, self.table.lookup(n, p)) for p, n in self._candidates()]
        ranked = self._rank(entries, conditions)
        seen = {(c.provider, c.model) for c in ranked}
        for provider, name in self.fallback:
            info = self.table.lookup(name, provider)
            key = (provider or (info.provider if info else None), name)
            if key not in seen:
                seen.add(key)
                ranked.append(_candidate(name, key[0], info, conditions, fallback=True))
        return ranked

    def choose(self, request_or_messages: ChatRequest | Sequence[Any], **conditions: Any) -> str:
        """The best model's name for the request; ``LookupError`` when nothing fits."""
        ranked = self.select(request_or_messages, **conditions)
        if not ranked:
            raise LookupError(
                "no candidate model fits this request (context window, capabilities, max_cost "
                "or min_quality); widen the conditions or give the selector a fallback"
            )
        return ranked[0].model

    # -- pieces ----------------------------------------------------------------------------

    def _candidates(self) -> Iterable[tuple[str | None, str]]:
        if self.models:
            return self.models
        return [(info.provider, info.name) for info in self.table.entries() if info.quality]

    def _conditions(
        self,
        request: ChatRequest,
        needs: Iterable[str],
        max_cost: float | None,
        min_quality: int | None,
    ) -> _Conditions:
        prompt = int(_CHAR_ESTIMATE.count_messages(request.messages, tools=request.tools))
        return _Conditions(
            prompt_tokens=prompt,
            output_tokens=request.max_tokens or _ASSUMED_OUTPUT_TOKENS,
            max_tokens=request.max_tokens,
            needs=request_capabilities(request) | self.needs | _needs(needs),
            max_cost=self.max_cost if max_cost is None else max_cost,
            min_quality=self.min_quality if min_quality is None else min_quality,
        )

    def _rank(
        self,
        entries: Sequence[tuple[str | None, str, ModelInfo | None]],
        conditions: _Conditions,
    ) -> list[Candidate]:
        fit = [
            _candidate(name, provider or (info.provider if info else None), info, conditions)
            for provider, name, info in entries
            if info is not None and _fits(info, conditions)
        ]
        if self.preset == "cost":
            fit.sort(key=lambda c: (_cost_key(c), -(c.quality or 0)))
        elif self.preset == "quality":
            fit.sort(key=lambda c: (-(c.quality or 0), _cost_key(c)))
        else:
            priced = [c.estimated_cost for c in fit if c.estimated_cost]
            cheapest = min(priced) if priced else None
            weight = self.cost_weight

            def score(c: Candidate) -> tuple[bool, float]:
                # Unpriced models last: their cost cannot be weighed against their quality.
                value = float(c.quality or 0)
                if cheapest is not None and c.estimated_cost:
                    value -= weight * math.log10(c.estimated_cost / cheapest)
                return (c.estimated_cost is None, -value)

            fit.sort(key=score)
        return fit


def _fits(info: ModelInfo, conditions: _Conditions) -> bool:
    needed = conditions.prompt_tokens + conditions.output_tokens
    if info.context_window is not None and needed > info.context_window:
        return False
    if (
        conditions.max_tokens is not None
        and info.max_output_tokens is not None
        and conditions.max_tokens > info.max_output_tokens
    ):
        return False
    if any(getattr(info, capability) is not True for capability in conditions.needs):
        return False
    if conditions.max_cost is not None:
        cost = info.cost(conditions.prompt_tokens, conditions.output_tokens)
        if cost is None or cost > conditions.max_cost:
            return False
    if conditions.min_quality is None:
        return True
    return info.quality is not None and info.quality >= conditions.min_quality


def _candidate(
    name: str,
    provider: str | None,
    info: ModelInfo | None,
    conditions: _Conditions,
    *,
    fallback: bool = False,
) -> Candidate:
    cost = None
    if info is not None:
        cost = info.cost(conditions.prompt_tokens, conditions.output_tokens)
    return Candidate(
        model=name,
        provider=provider,
        estimated_cost=cost,
        quality=info.quality if info is not None else None,
        context_window=info.context_window if info is not None else None,
        fallback=fallback,
    )


def _cost_key(candidate: Candidate) -> tuple[bool, float]:
    cost = candidate.estimated_cost
    return (cost is None, cost or 0.0)


def _entry(model: str | tuple[str, str]) -> tuple[str | None, str]:
    if isinstance(model, str):
        if not model:
            raise ValueError("a candidate model name must not be empty")
        return (None, model)
    provider, name = model
    return (provider, name)


def _needs(needs: Iterable[str]) -> frozenset[str]:
    if isinstance(needs, str):
        needs = (needs,)
    found = frozenset(needs)
    unknown = found - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; use {list(CAPABILITIES)}")
    return found


class ModelSelectorStrategy(RoutingStrategy):
    """A router strategy that orders routes as ``selector`` ranks their models for each
    request; routes it rules out (or whose model the table does not know) come after, in
    priority order. A cascade, like the sequential one."""

    name: ClassVar[str] = "selector"

    def __init__(self, selector: ModelSelector) -> None:
        self.selector = selector

    def __repr__(self) -> str:
        return f"ModelSelectorStrategy({self.selector!r})"

    def order(
        self, routes: Sequence[Route], request: ChatRequest, stats: Mapping[str, RouteStats]
    ) -> list[Route]:
        ranked_routes = by_priority(routes)
        selector = self.selector
        conditions = selector._conditions(request, (), None, None)
        table = selector.table
        entries = []
        for route in ranked_routes:
            model = route.model_for(request)
            info = table.lookup(model, route.provider) if model else None
            entries.append((route.provider, model, info))
        ranked = selector._rank(entries, conditions)
        position = {(c.provider, c.model): i for i, c in reversed(list(enumerate(ranked)))}
        chosen = [r for r in ranked_routes if (r.provider, r.model_for(request)) in position]
        chosen.sort(key=lambda r: position[(r.provider, r.model_for(request))])
        rest = [r for r in ranked_routes if (r.provider, r.model_for(request)) not in position]
        return chosen + rest
