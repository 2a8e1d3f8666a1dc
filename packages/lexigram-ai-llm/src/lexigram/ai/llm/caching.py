"""``LLMCache``: response caching and single flight for ``complete`` and ``stream_chat``.

A completion is stored as JSON (``Completion.to_dict``) under a key derived from everything
that shapes the answer — provider, model, messages (parts, tool calls, thinking), tools,
response format, sampling parameters, thinking config and extra options — and never from the
API key. The key is a SHA-256 of canonical JSON (sorted keys, fixed number forms), so it is the
same in every process and on every Python version::

    cache = LLMCache(RedisCacheBackend("redis://localhost"), ttl=600)
    client = create_llm_client(config, cache=cache)

The ``provider`` the client passes is its ``cache_scope``: the provider name and where it is
reached (the base URL, normalised and without userinfo; the local provider's model file), so
two clients of the same provider and model on different hosts never serve each other's
answers. Clients sharing one cache on behalf of several tenants (API keys) can keep their
entries apart with ``ClientConfig(cache_per_api_key=True)``: the scope then also holds a short,
non-reversible SHA-256 fingerprint of the key (never the key itself). Without it, clients of
one host share entries whatever their key.

Identical requests in flight at the same time make one provider call: callers in one process
share one task, and processes sharing a backend with ``set_if_absent`` (Redis, disk) take a
short-lived claim on the key; the others poll for the stored answer, within a bounded wait.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import secrets
import time
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from enum import Enum
from typing import Any

import orjson

from lexigram.ai.llm.exceptions import LLMError
from lexigram.ai.llm.types import ChatRequest, Completion
from lexigram.contracts.cache import CacheBackendProtocol
from lexigram.result import Ok, Result

__all__ = ["CACHE_KEY_VERSION", "LLMCache", "LLMCacheStats", "request_cache_key"]

logger = logging.getLogger("lexigram.ai.llm.cache")

#: Bumped whenever the canonical form or the stored format changes, so old entries are ignored.
CACHE_KEY_VERSION = "v1"
_KEY_PREFIX = "llm:"
_CLAIM_SUFFIX = ":claim"
_VECTOR_TAG = b"f64:"  # a stored embedding: this tag, then native-order float64 values

# Option names whose values are credentials: left out of the key wherever they appear.
_SECRET_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "authorization",
        "proxy-authorization",
        "access_token",
        "client_secret",
        "password",
    }
)

Call = Callable[[], Awaitable[Result[Completion, LLMError]]]


class UncacheableRequestError(TypeError):
    """The request holds a value with no canonical JSON form; it bypasses the cache."""


# -- the key -------------------------------------------------------------------------------


def request_cache_key(request: ChatRequest, provider: str) -> str:
    """The cache key for ``request`` sent to ``provider``: ``llm:v1:<sha256 hex>``.

    Raises ``UncacheableRequestError`` when an extra option has no canonical form.
    """
    canonical = {
        "provider": provider,
        "model": request.model,
        "messages": [_without_cache_points(message.to_dict()) for message in request.messages],
        "tools": [
            {
                "name": tool.name,
                "description": tool.description,
                "parameters": _plain(tool.parameters),
                "strict": tool.strict,
            }
            for tool in request.tools
        ],
        "tool_choice": _plain(request.tool_choice),
        "response_format": _plain(request.response_format),
        "temperature": _number(request.temperature),
        "max_tokens": request.max_tokens,
        "top_p": _number(request.top_p),
        "stop": list(request.stop),
        "seed": request.seed,
        "thinking": None if request.thinking is None else request.thinking.model_dump(),
        "extra": _plain(request.extra),
    }
    blob = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    return f"{_KEY_PREFIX}{CACHE_KEY_VERSION}:{hashlib.sha256(blob).hexdigest()}"


def _without_cache_points(message: dict[str, Any]) -> dict[str, Any]:
    # A cache point changes what the provider charges, never the answer.
    content = message.get("content")
    if isinstance(content, list) and any(p.get("type") == "cache_point" for p in content):
        message["content"] = [p for p in content if p.get("type") != "cache_point"]
    return message


def _number(value: float | None) -> float | None:
    # 1 and 1.0 must give the same key.
    return None if value is None else float(value)


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data with a single canonical form, credentials left out."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.lower() in _SECRET_NAMES)
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=lambda item: orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if hasattr(value, "get_secret_value"):
        return "<secret>"  # a credential never enters the key, whatever its option's name
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _plain(dump(mode="json"))
    try:  # what orjson itself can write (dates, UUIDs...) has one form already
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        pass
    raise UncacheableRequestError(
        f"a {type(value).__name__} in the request has no canonical form for a cache key"
    )


# -- statistics ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LLMCacheStats:
    """Counters since the cache was created.

    ``hits``/``misses`` count lookups; ``coalesced`` counts callers answered by an identical
    call already in flight (here or in another process); ``stores`` counts answers written;
    ``bypassed`` requests that could not be keyed; ``errors`` backend failures (each one
    degraded to a miss, never to a failed call).
    """

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    stores: int = 0
    bypassed: int = 0
    errors: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0.0 before any lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


@dataclass(slots=True)
class _Counters:
    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    stores: int = 0
    bypassed: int = 0
    errors: int = 0


@dataclass(slots=True)
class _Flight:
    """One provider call shared by every identical request in flight in this process."""

    task: asyncio.Task[Result[Completion, LLMError]]
    loop: asyncio.AbstractEventLoop
    waiters: int = 0


@dataclass(slots=True)
class _Polling:
    delay: float = 0.01
    ceiling: float = 0.25
    started: float = field(default_factory=time.monotonic)


# -- the cache -----------------------------------------------------------------------------


class LLMCache:
    """Caches ``Ok`` completions in a ``CacheBackendProtocol`` (in memory when none is given).

    ``ttl`` is the lifetime of an entry in seconds (``None``: no expiry). ``claim_ttl`` bounds
    how long another process may hold the claim on an identical request, and ``wait_timeout``
    how long a caller waits for that answer before calling the provider itself.

    A failing backend (down, or timing out: the Redis backends bound each command by their
    ``socket_timeout``) never fails a call: the failure is logged, counted in
    ``stats.errors``, and for ``failure_backoff`` seconds afterwards the cache is skipped
    (lookups miss, answers are not stored) so that each request does not wait for the backend
    again; then it is tried again.
    """

    def __init__(
        self,
        backend: CacheBackendProtocol | None = None,
        *,
        ttl: float | None = 3600.0,
        claim_ttl: float = 120.0,
        wait_timeout: float = 120.0,
        failure_backoff: float = 2.0,
    ) -> None:
        if backend is None:
            from lexigram.cache import MemoryCacheBackend

            backend = MemoryCacheBackend()
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive or None, got {ttl}")
        if claim_ttl <= 0 or wait_timeout < 0 or failure_backoff < 0:
            raise ValueError(
                "claim_ttl must be positive, wait_timeout and failure_backoff not negative"
            )
        self.backend = backend
        self.ttl = ttl
        self.claim_ttl = claim_ttl
        self.wait_timeout = wait_timeout
        self.failure_backoff = failure_backoff
        self._backend_down_until = 0.0  # monotonic time until which the backend is skipped
        self._counters = _Counters()
        self._flights: dict[str, _Flight] = {}
        self._background: set[asyncio.Future[None]] = set()
        # The key ``get`` just computed, for the ``single_flight``/``put`` that follow a miss
        # on the same request: a long conversation is not serialised and hashed twice.
        self._pending_key: tuple[ChatRequest, str, str | None] | None = None

    def __repr__(self) -> str:
        return f"LLMCache(backend={type(self.backend).__name__}, ttl={self.ttl!r})"

    @property
    def stats(self) -> LLMCacheStats:
        """A snapshot of the counters."""
        c = self._counters
        return LLMCacheStats(c.hits, c.misses, c.coalesced, c.stores, c.bypassed, c.errors)

    def key(self, request: ChatRequest, provider: str) -> str | None:
        """The key for this request, or ``None`` when it cannot be cached."""
        try:
            return request_cache_key(request, provider)
        except UncacheableRequestError as exc:
            logger.debug("request not cached: %s", exc)
            return None

    # -- embeddings: one entry per text ----------------------------------------------------

    def embedding_keys(
        self,
        scope: str,
        model: str,
        texts: Sequence[str],
        *,
        dimensions: int | None,
        input_type: str | None,
        extra: Mapping[str, Any],
    ) -> list[str] | None:
        """One key per text: provider scope (provider, base URL, key fingerprint), model,
        dimensions, input type and extra options, then the text. ``None`` when ``extra``
        has no canonical form (the call bypasses the cache)."""
        try:
            head = {
                "kind": "embedding",
                "provider": scope,
                "model": model,
                "dimensions": dimensions,
                "input_type": input_type,
                "extra": _plain(extra),
            }
        except UncacheableRequestError as exc:
            logger.debug("embedding call not cached: %s", exc)
            self._counters.bypassed += 1
            return None
        base = hashlib.sha256(orjson.dumps(head, option=orjson.OPT_SORT_KEYS) + b"\0")
        prefix = f"{_KEY_PREFIX}{CACHE_KEY_VERSION}:emb:"
        keys = []
        for text in texts:
            digest = base.copy()
            digest.update(text.encode("utf-8", "surrogatepass"))
            keys.append(prefix + digest.hexdigest())
        return keys

    async def get_embedding(self, key: str) -> list[float] | None:
        """The stored vector under ``key`` (from ``embedding_keys``), or ``None``."""
        if not self._backend_up():
            return None
        try:
            raw = await self.backend.get(key)
        except Exception as exc:
            self._backend_failed("get", exc)
            return None
        if raw is None or not raw.startswith(_VECTOR_TAG) or (len(raw) - 4) % 8:
            self._counters.misses += 1
            return None
        self._counters.hits += 1
        values = array("d")
        values.frombytes(raw[4:])
        return values.tolist()

    async def put_embedding(self, key: str, vector: Sequence[float]) -> None:
        """Store ``vector`` (as exact float64 values) under ``key``."""
        if not self._backend_up():
            return
        try:
            await self.backend.set(key, _VECTOR_TAG + array("d", vector).tobytes(), self.ttl)
        except Exception as exc:
            self._backend_failed("set", exc)
            return
        self._counters.stores += 1

    # -- the client's seam -----------------------------------------------------------------

    async def get(self, request: ChatRequest, provider: str) -> Completion | None:
        """The cached answer (``cached=True``), or ``None``."""
        key = self.key(request, provider)
        self._pending_key = (request, provider, key)
        if key is None:
            self._counters.bypassed += 1
            return None
        found = await self._load(key)
        if found is None:
            self._counters.misses += 1
        else:
            self._counters.hits += 1
            self._pending_key = None  # nothing follows a hit: do not keep the request alive
        return found

    async def put(self, request: ChatRequest, provider: str, completion: Completion) -> None:
        """Store ``completion`` as the answer to ``request``."""
        key = self._key_after_get(request, provider)
        if key is not None:
            await self._store(key, completion)

    async def single_flight(
        self, request: ChatRequest, provider: str, call: Call
    ) -> Result[Completion, LLMError]:
        """``call()`` once for all identical requests in flight; an ``Ok`` answer is stored.

        Callers that joined a call in flight get its result, error included. Cancelling one
        caller does not cancel the shared call while others still wait for it.
        """
        key = self._key_after_get(request, provider)
        if key is None:
            return await call()
        loop = asyncio.get_running_loop()
        flight = self._flights.get(key)
        if flight is None or flight.loop is not loop or flight.task.done():
            flight = _Flight(asyncio.ensure_future(self._lead(key, call)), loop)
            self._flights[key] = flight
            flight.task.add_done_callback(lambda _: self._forget(key, flight))
        else:
            self._counters.coalesced += 1
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                flight.task.cancel()  # nobody else wants this answer: stop it, let it clean up
                await asyncio.wait([flight.task])
            raise
        finally:
            flight.waiters -= 1

    async def clear(self) -> int:
        """Remove every cached completion from the backend; the number removed."""
        return await self.backend.clear(_KEY_PREFIX)

    # -- internals -------------------------------------------------------------------------

    def _key_after_get(self, request: ChatRequest, provider: str) -> str | None:
        """``key()``, reusing the one ``get`` computed for this very request (used once)."""
        pending, self._pending_key = self._pending_key, None
        if pending is not None and pending[0] is request and pending[1] == provider:
            return pending[2]
        return self.key(request, provider)

    def _forget(self, key: str, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.task.cancelled() and flight.task.exception() is not None:
            logger.debug("shared call for %s failed", key, exc_info=flight.task.exception())

    async def _lead(self, key: str, call: Call) -> Result[Completion, LLMError]:
        """Make the call for this process, coordinating with other processes on ``key``."""
        claim = getattr(self.backend, "set_if_absent", None)
        if claim is None or not self._backend_up():
            return await self._call_and_store(key, call)
        claim_key = key + _CLAIM_SUFFIX
        deadline = time.monotonic() + self.wait_timeout
        while True:
            token = secrets.token_hex(16).encode()
            try:
                claimed = bool(await claim(claim_key, token, self.claim_ttl))
            except Exception as exc:  # a broken backend must not break the call
                self._backend_failed("claim", exc)
                # A timeout may have landed after the claim was stored: give it back, in the
                # background, without making this call wait for the backend once more.
                self._in_background(self._release(claim_key, token))
                return await call()
            except BaseException:
                # A cancel can land after the backend stored the claim and before its answer
                # reached us: give back whatever holds our token, or identical requests in
                # other processes wait for an answer that never comes, up to ``claim_ttl``.
                await asyncio.shield(self._release(claim_key, token))
                raise
            if claimed:
                try:
                    # Another process may have stored the answer since our lookup.
                    found = await self._load(key)
                    if found is not None:
                        self._counters.coalesced += 1
                        return Ok(found)
                    return await self._call_and_store(key, call)
                finally:
                    await asyncio.shield(self._release(claim_key, token))
            found, claim_gone = await self._wait_for_answer(key, claim_key, deadline)
            if found is not None:
                self._counters.coalesced += 1
                return Ok(found)
            if not claim_gone:  # waited long enough: ask the provider ourselves
                return await self._call_and_store(key, call)
            # The holder gave up without an answer (its call failed): try to claim it ourselves.

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)  # held until done, so it is not garbage-collected midway
        task.add_done_callback(self._background.discard)

    async def _wait_for_answer(
        self, key: str, claim_key: str, deadline: float
    ) -> tuple[Completion | None, bool]:
        """Poll for the answer another process is fetching: ``(answer, claim released)``."""
        polling = _Polling()
        while True:
            if not self._backend_up():
                return None, False
            found = await self._load(key)
            if found is not None:
                return found, True
            try:
                held = await self.backend.exists(claim_key)
            except Exception as exc:
                self._backend_failed("exists", exc)
                return None, False
            if not held:
                return None, True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, False
            await asyncio.sleep(min(polling.delay, remaining))
            polling.delay = min(polling.delay * 1.5, polling.ceiling)

    async def _call_and_store(self, key: str, call: Call) -> Result[Completion, LLMError]:
        result = await call()
        if isinstance(result, Ok):
            await self._store(key, result.value)
        return result

    async def _release(self, claim_key: str, token: bytes) -> None:
        # Only our own claim: it may have expired and been taken by another process since.
        try:
            if await self.backend.get(claim_key) == token:
                await self.backend.delete(claim_key)
        except Exception as exc:
            self._backend_failed("release", exc)

    async def _load(self, key: str) -> Completion | None:
        if not self._backend_up():
            return None
        try:
            raw = await self.backend.get(key)
        except Exception as exc:
            self._backend_failed("get", exc)
            return None
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            return replace(Completion.from_dict(data["completion"]), cached=True)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            logger.warning("dropping an unreadable cache entry %s: %s", key, exc)
            with contextlib.suppress(Exception):
                await self.backend.delete(key)
            return None

    async def _store(self, key: str, completion: Completion) -> None:
        payload = orjson.dumps(
            {
                "version": CACHE_KEY_VERSION,
                "completion": replace(completion, cached=False).to_dict(),
            }
        )
        if not self._backend_up():
            return
        try:
            await self.backend.set(key, payload, self.ttl)
        except Exception as exc:
            self._backend_failed("set", exc)
            return
        self._counters.stores += 1

    def _backend_up(self) -> bool:
        return self._backend_down_until <= time.monotonic()

    def _backend_failed(self, operation: str, exc: Exception) -> None:
        self._counters.errors += 1
        self._backend_down_until = time.monotonic() + self.failure_backoff
        logger.warning(
            "cache backend %s failed (%s: %s); continuing without the cache for %.1fs",
            operation,
            type(exc).__name__,
            exc,
            self.failure_backoff,
        )
