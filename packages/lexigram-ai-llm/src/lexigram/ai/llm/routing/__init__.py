"""Multi-provider routing: ``LLMConfig`` describes the providers, ``LLMRouter`` routes.

::

    module = LLMModule.configure(routing=LLMConfig(providers=[
        ProviderRoute(name="openai", model="gpt-4o-mini"),
        ProviderRoute(name="anthropic", model="claude-3-5-haiku-latest", priority=1),
    ]))

The router is itself an ``LLMClientProtocol``: ``complete`` and ``stream_chat`` work as on any
client, and ``Completion.attempts`` records which provider answered and every attempt.
"""

from lexigram.ai.llm.routing.config import Cooldowns, LLMConfig, ProviderRoute
from lexigram.ai.llm.routing.router import LLMRouter, NoRouteAvailableError, Route, RoutedStream
from lexigram.ai.llm.routing.state import (
    MemoryRouterState,
    RedisRouterState,
    RouterState,
    RouteStats,
)
from lexigram.ai.llm.routing.strategies import (
    CostOptimizedStrategy,
    HedgedStrategy,
    LatencyOptimizedStrategy,
    ParallelRaceStrategy,
    RoutingStrategy,
    SequentialCascadeStrategy,
)

__all__ = [
    "Cooldowns",
    "CostOptimizedStrategy",
    "HedgedStrategy",
    "LLMConfig",
    "LLMRouter",
    "LatencyOptimizedStrategy",
    "MemoryRouterState",
    "NoRouteAvailableError",
    "ParallelRaceStrategy",
    "ProviderRoute",
    "RedisRouterState",
    "Route",
    "RouteStats",
    "RoutedStream",
    "RouterState",
    "RoutingStrategy",
    "SequentialCascadeStrategy",
]
