"""``LLMConfig``: the providers a router may use, how it picks them, and how long it rests them.

It is the ``ai_llm_routing`` configuration section, so it also reads ``application.yaml`` and
``LEX_AI_LLM_ROUTING__*`` variables::

    ai_llm_routing:
      strategy: sequential
      providers:
        - {name: openai, model: gpt-4o-mini, priority: 0}
        - {name: anthropic, model: claude-3-5-haiku-latest, priority: 1}
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from lexigram.config import SectionSettings

__all__ = ["CascadeOn", "Cooldowns", "LLMConfig", "ProviderRoute", "StrategyName"]

StrategyName = Literal["sequential", "parallel", "hedged", "cost", "latency"]
CascadeOn = Literal["invalid_request", "context_length", "content_filter"]


class ProviderRoute(BaseModel):
    """One provider a router may send a request to.

    ``name`` identifies the route (its cooldown and statistics) and is the provider's
    registered name unless ``provider`` gives another, so two routes may reach the same
    provider with different models or hosts. Routes with a lower ``priority`` are tried first;
    among equal priorities, unequal ``weight`` values spread the traffic at random in
    proportion (equal weights keep the listed order). Without ``model``, the caller's model is
    used. ``input_per_mtok``/``output_per_mtok`` (USD per million tokens) override the pricing
    table for the cost strategy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    provider: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    enabled: bool = True
    priority: int = 0
    weight: float = Field(default=1.0, gt=0)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def provider_name(self) -> str:
        """The registered provider this route calls."""
        return self.provider or self.name

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        return value.rstrip("/")

    def __repr__(self) -> str:
        return (
            f"ProviderRoute(name={self.name!r}, provider={self.provider_name!r}, "
            f"model={self.model!r}, base_url={self.base_url!r}, "
            f"api_key={'set' if self.api_key else None}, priority={self.priority!r}, "
            f"enabled={self.enabled!r})"
        )

    __str__ = __repr__


class Cooldowns(BaseModel):
    """How long (seconds) a route rests after a failure before it is tried again.

    ``rate_limit`` applies to a 429 that gave no ``Retry-After`` (one that did is honoured);
    ``quota`` to an exhausted quota or credit (402, ``insufficient_quota``) and to a rejected
    key, which waiting will not fix soon; ``failure`` to server errors, timeouts and refused
    connections (0: none, the per-route circuit breaker still applies). ``max`` caps them all.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit: float = Field(default=30.0, ge=0)
    quota: float = Field(default=3600.0, ge=0)
    failure: float = Field(default=0.0, ge=0)
    max: float = Field(default=3600.0, ge=0)


class LLMConfig(SectionSettings):
    """A router's configuration: the ``providers`` (routes), the ``strategy`` and cooldowns.

    With no providers, the router has a single route built from the ``ai_llm`` client
    configuration, so ``LLMModule.configure(routing=LLMConfig())`` behaves like a plain client.

    - ``strategy``: ``sequential`` (cascade in priority order), ``parallel`` (race all, first
      success wins), ``hedged`` (a second request only after ``hedge_delay`` seconds without an
      answer), ``cost`` (cheapest first, from the pricing table) or ``latency`` (fastest first,
      from live statistics).
    - ``retries_per_provider``: retries of one route before moving to the next (0: move on).
    - ``cascade_on``: error kinds that move on to the next route although another provider
      would most likely refuse them too (by default they are returned at once).
    - ``redis_url``: share cooldowns, statistics and route rate limits between processes.
    """

    __section__: ClassVar[str] = "ai_llm_routing"

    providers: list[ProviderRoute] = Field(default_factory=list)
    strategy: StrategyName = "sequential"
    hedge_delay: float = Field(default=2.0, ge=0)
    max_parallel: int | None = Field(default=None, ge=1)
    retries_per_provider: int = Field(default=0, ge=0, le=10)
    cooldowns: Cooldowns = Field(default_factory=Cooldowns)
    cascade_on: frozenset[CascadeOn] = frozenset()
    redis_url: SecretStr | None = None
    redis_prefix: str = "lexigram:router:"

    @field_validator("providers", mode="before")
    @classmethod
    def _routes_from_strings(cls, value: Any) -> Any:
        # ``"openai/gpt-4o-mini"`` is shorthand for a route of that name, provider and model.
        if isinstance(value, list | tuple):
            return [_route_from_string(item) if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> LLMConfig:
        seen: set[str] = set()
        for route in self.providers:
            if route.name in seen:
                raise ValueError(
                    f"two routes are named {route.name!r}; give each a unique name and set "
                    f"provider={route.provider_name!r} on both"
                )
            seen.add(route.name)
        return self

    def __repr__(self) -> str:
        names = ", ".join(route.name for route in self.providers)
        return (
            f"LLMConfig(providers=[{names}], strategy={self.strategy!r}, "
            f"redis_url={'set' if self.redis_url else None})"
        )

    __str__ = __repr__


def _route_from_string(spec: str) -> dict[str, Any]:
    provider, _, model = spec.strip().partition("/")
    route: dict[str, Any] = {"name": spec.strip(), "provider": provider.strip()}
    if model:
        route["model"] = model.strip()
    return route
