"""Spending budgets: ``Budget(max_cost=5.0, max_tokens=..., window=3600, scope="team-a")``.

A client (``create_llm_client(config, budget=...)``) reserves each call's estimate (prompt
size plus ``max_tokens``, priced from the model table) before sending it and refuses with
``LLMBudgetExceededError`` when the reservation would overrun; after the call the reservation
is settled to the real usage and cost. With ``redis_url`` the ledger is shared by every
process through one Lua script per step, so concurrent callers can never reserve past the
limit together.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Budget", "Reservation"]

# KEYS[1] spent cost, KEYS[2] spent tokens. ARGV: cost, tokens, max cost (-1: none),
# max tokens (-1: none), TTL ms (0: none). Returns 1 when reserved, 0 when it would overrun.
_RESERVE = """
local cost = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local max_cost, max_tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
if max_cost >= 0 and cost + tonumber(ARGV[1]) > max_cost then return 0 end
if max_tokens >= 0 and tokens + tonumber(ARGV[2]) > max_tokens then return 0 end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('INCRBYFLOAT', KEYS[2], ARGV[2])
if tonumber(ARGV[5]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5], 'NX')
  redis.call('PEXPIRE', KEYS[2], ARGV[5], 'NX')
end
return 1
"""
# Settle: add the difference between what was used and what was reserved.
_SETTLE = """
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('INCRBYFLOAT', KEYS[2], ARGV[2])
return 1
"""
_SHAS = {
    s: hashlib.sha1(s.encode(), usedforsecurity=False).hexdigest() for s in (_RESERVE, _SETTLE)
}


@dataclass(frozen=True, slots=True)
class Reservation:
    """One call's reserved estimate, in the window it was taken from."""

    key: str
    cost: float
    tokens: int


@dataclass(slots=True)
class Budget:
    """At most ``max_cost`` (USD) and/or ``max_tokens`` per ``window`` seconds (``None``: in
    total) for ``scope`` (a user, team or key: the caller names it). ``redis_url`` shares the
    ledger between processes; without it the ledger lives in this process."""

    max_cost: float | None = None
    max_tokens: int | None = None
    window: float | None = None
    scope: str = "default"
    redis_url: str | None = None
    prefix: str = "lexigram:budget:"
    _spent: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _redis: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_cost is None and self.max_tokens is None:
            raise ValueError("a Budget needs max_cost or max_tokens")
        for name in ("max_cost", "max_tokens", "window"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValueError(f"Budget.{name} must be a positive number, not {value!r}")
        if not isinstance(self.scope, str) or not self.scope:
            raise ValueError("Budget.scope must be a non-empty string")

    def _key(self) -> str:
        if self.window is None:
            return f"{self.prefix}{{{self.scope}}}"
        return f"{self.prefix}{{{self.scope}}}:{math.floor(time.time() / self.window)}"

    async def reserve(self, cost: float, tokens: int) -> Reservation | None:
        """Reserve an estimate; ``None`` when it would take the scope past a limit."""
        key = self._key()
        if self.redis_url is None:
            spent = self._spent.setdefault(key, [0.0, 0.0])
            if self.max_cost is not None and spent[0] + cost > self.max_cost:
                return None
            if self.max_tokens is not None and spent[1] + tokens > self.max_tokens:
                return None
            spent[0] += cost
            spent[1] += tokens
            return Reservation(key, cost, tokens)
        ttl = 0 if self.window is None else math.ceil(self.window * 2000)
        limits = (
            -1 if self.max_cost is None else self.max_cost,
            -1 if self.max_tokens is None else self.max_tokens,
        )
        granted = await self._run(_RESERVE, key, repr(float(cost)), tokens, *limits, ttl)
        return Reservation(key, cost, tokens) if int(granted) else None

    async def settle(self, reservation: Reservation, cost: float, tokens: int) -> None:
        """Replace a reservation by what the call really used (0 and 0 for a failed call)."""
        d_cost, d_tokens = cost - reservation.cost, tokens - reservation.tokens
        if self.redis_url is None:
            spent = self._spent.setdefault(reservation.key, [0.0, 0.0])
            spent[0] += d_cost
            spent[1] += d_tokens
            return
        await self._run(_SETTLE, reservation.key, repr(float(d_cost)), d_tokens)

    async def spent(self) -> tuple[float, int]:
        """Cost and tokens spent (and reserved) in the current window."""
        key = self._key()
        if self.redis_url is None:
            cost, tokens = self._spent.get(key, [0.0, 0.0])
            return cost, int(tokens)
        client = self._client()
        cost, tokens = await client.mget(f"{key}:cost", f"{key}:tokens")
        return float(cost or 0), int(float(tokens or 0))

    async def close(self) -> None:
        """Close the Redis connection this budget opened."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _client(self) -> Any:
        if self._redis is None:
            try:
                from redis.asyncio import Redis
            except ImportError as exc:
                raise ImportError(
                    "A Budget with redis_url needs redis: pip install 'lexigram-resilience[redis]'"
                ) from exc
            assert self.redis_url is not None
            self._redis = Redis.from_url(self.redis_url)
        return self._redis

    async def _run(self, script: str, key: str, *args: Any) -> Any:
        from redis.exceptions import NoScriptError

        client = self._client()
        keys = (f"{key}:cost", f"{key}:tokens")
        try:
            return await client.evalsha(_SHAS[script], 2, *keys, *args)
        except NoScriptError:
            return await client.eval(script, 2, *keys, *args)
