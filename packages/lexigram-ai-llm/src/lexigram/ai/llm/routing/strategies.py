"""Routing strategies: in which order routes are tried, and how many run at once.

A strategy only decides; the router runs the attempts. ``order`` ranks the routes that are not
resting; ``stagger`` says when the next one starts while one is still running (``None``: only
after a failure; ``0``: at once, a race; a number: after that many seconds, a hedge) and
``max_parallel`` how many may run together.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from lexigram.ai.llm.tokens import CharEstimateCounter
from lexigram.ai.llm.types import ChatRequest

if TYPE_CHECKING:
    from lexigram.ai.llm.pricing import ModelInfo
    from lexigram.ai.llm.routing.router import Route
    from lexigram.ai.llm.routing.state import RouteStats

__all__ = [
    "CostOptimizedStrategy",
    "HedgedStrategy",
    "LatencyOptimizedStrategy",
    "ParallelRaceStrategy",
    "PriceLookup",
    "RoutingStrategy",
    "SequentialCascadeStrategy",
    "strategy_for",
]

#: ``(provider, model) -> ModelInfo | None``: where the cost strategy finds prices.
PriceLookup = Callable[[str, str], "ModelInfo | None"]

# Output length assumed by the cost estimate when the request sets no ``max_tokens``.
_ASSUMED_OUTPUT_TOKENS = 512

# The prompt estimate from sizes alone; stateless, so one instance serves every request.
_CHAR_ESTIMATE = CharEstimateCounter()


class RoutingStrategy:
    """Base strategy: priority order, one route at a time."""

    name: ClassVar[str] = "sequential"
    stagger: float | None = None
    max_parallel: int | None = 1

    def order(
        self, routes: Sequence[Route], request: ChatRequest, stats: Mapping[str, RouteStats]
    ) -> list[Route]:
        """The routes in the order to try them."""
        return by_priority(routes, self._rng())

    def _rng(self) -> random.Random | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def by_priority(routes: Sequence[Route], rng: random.Random | None = None) -> list[Route]:
    """Lowest ``priority`` first; within a priority, the listed order, or a weighted random
    order when the weights differ (each route leads in proportion to its weight)."""
    tiers: dict[int, list[Route]] = {}
    for route in routes:
        tiers.setdefault(route.priority, []).append(route)
    ordered: list[Route] = []
    for priority in sorted(tiers):
        tier = tiers[priority]
        if len({route.weight for route in tier}) > 1:
            draw = rng or random
            # Efraimidis-Spirakis: sorting by u ** (1 / w) is a weighted draw without replacement.
            tier = sorted(tier, key=lambda r: draw.random() ** (1.0 / r.weight), reverse=True)
        ordered.extend(tier)
    return ordered


class SequentialCascadeStrategy(RoutingStrategy):
    """Try routes one after the other in priority order, moving on after a failure."""

    name: ClassVar[str] = "sequential"

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self.rng = rng

    def _rng(self) -> random.Random | None:
        return self.rng


class ParallelRaceStrategy(RoutingStrategy):
    """Send to every route at once (at most ``max_parallel``); the first success wins and the
    others are cancelled, their connections closed."""

    name: ClassVar[str] = "parallel"
    stagger = 0.0

    def __init__(self, *, max_parallel: int | None = None) -> None:
        self.max_parallel = max_parallel

    def __repr__(self) -> str:
        return f"ParallelRaceStrategy(max_parallel={self.max_parallel!r})"


class HedgedStrategy(RoutingStrategy):
    """Send to the first route; if no answer came after ``delay`` seconds, send to the next as
    well (up to ``max_parallel`` at once). The first success wins; a failure starts the next
    route at once."""

    name: ClassVar[str] = "hedged"

    def __init__(self, delay: float = 2.0, *, max_parallel: int = 2) -> None:
        if delay < 0 or max_parallel < 1:
            raise ValueError("delay must not be negative and max_parallel at least 1")
        self.stagger = delay
        self.max_parallel = max_parallel

    def __repr__(self) -> str:
        return f"HedgedStrategy(delay={self.stagger!r}, max_parallel={self.max_parallel!r})"


class CostOptimizedStrategy(RoutingStrategy):
    """Cheapest route first, by the estimated price of this request (the prompt estimated from
    its size, plus ``max_tokens``) from the pricing table or the route's own prices. Unpriced
    routes come last, in priority order. A cascade, like the sequential one."""

    name: ClassVar[str] = "cost"

    def __init__(self, prices: PriceLookup | None = None) -> None:
        self.prices = prices

    def order(
        self, routes: Sequence[Route], request: ChatRequest, stats: Mapping[str, RouteStats]
    ) -> list[Route]:
        prompt = int(_CHAR_ESTIMATE.count_messages(request.messages, tools=request.tools))
        output = request.max_tokens or _ASSUMED_OUTPUT_TOKENS
        ranked = by_priority(routes)
        costs = {route.name: self.estimate(route, request, prompt, output) for route in ranked}
        return sorted(ranked, key=lambda r: (costs[r.name] is None, costs[r.name] or 0.0))

    def estimate(
        self, route: Route, request: ChatRequest, prompt_tokens: int, output_tokens: int
    ) -> float | None:
        """USD this request would cost on ``route`` (``None`` when unpriced)."""
        info = route.price
        if info is None:
            lookup = self.prices or _pricing_table
            info = lookup(route.provider, route.model or request.model)
        if info is None:
            return None
        return info.cost(prompt_tokens, output_tokens)


def _pricing_table(provider: str, model: str) -> ModelInfo | None:
    from lexigram.ai.llm.pricing import lookup_model

    return lookup_model(model, provider) if model else None


class LatencyOptimizedStrategy(RoutingStrategy):
    """Fastest route first, by the moving average of its recent successful calls. Routes with
    no measurement yet go first (in priority order) so that each gets measured; no probe is
    sent. A cascade, like the sequential one."""

    name: ClassVar[str] = "latency"

    def order(
        self, routes: Sequence[Route], request: ChatRequest, stats: Mapping[str, RouteStats]
    ) -> list[Route]:
        def latency(route: Route) -> tuple[bool, float]:
            seen = stats.get(route.name)
            measured = seen.latency_ms if seen is not None else None
            return (measured is not None, measured or 0.0)

        return sorted(by_priority(routes), key=latency)


_BY_NAME: dict[str, Callable[[float, int | None], RoutingStrategy]] = {
    "sequential": lambda delay, parallel: SequentialCascadeStrategy(),
    "parallel": lambda delay, parallel: ParallelRaceStrategy(max_parallel=parallel),
    "hedged": lambda delay, parallel: HedgedStrategy(delay, max_parallel=parallel or 2),
    "cost": lambda delay, parallel: CostOptimizedStrategy(),
    "latency": lambda delay, parallel: LatencyOptimizedStrategy(),
}


def strategy_for(
    name: str, *, hedge_delay: float = 2.0, max_parallel: int | None = None
) -> RoutingStrategy:
    """The strategy an ``LLMConfig.strategy`` name stands for."""
    factory = _BY_NAME.get(name)
    if factory is None:
        raise ValueError(f"unknown routing strategy {name!r}; use one of {', '.join(_BY_NAME)}")
    return factory(hedge_delay, max_parallel)
