"""Embeddings: ``create_embedding_client(...)`` and ``embed(texts)`` giving ``Embeddings``.

::

    async with create_embedding_client("openai/text-embedding-3-small") as embedder:
        vectors = (await embedder.embed(["first text", "second text"])).unwrap()
        vectors[0]        # list[float]
        vectors.usage     # Usage(prompt_tokens=...)
        vectors.cost      # USD from the price table, when the model is priced

An embedding client sits on a chat client of the same provider and shares its transport, its
credentials and signer, its circuit breaker, rate limiter, retry policy and response cache:
each batch is one call through ``AbstractLLMClient.call_with_policies``.

- ``texts`` is a sequence of strings; one string is refused (``embed("a text")`` would
  otherwise embed its characters): pass ``[text]``. Empty strings are refused too.
- Texts are cut into batches by the provider's documented limits (count and tokens), sent
  concurrently (``max_concurrency`` batches at a time), and the vectors come back in input
  order. A failed batch is retried alone, by the retry policy; the call's result is the first
  batch that still fails. Batches that succeeded are cached even when another fails.
- The cache is per text (keyed by provider, base URL, model, dimensions, input type and extra
  options): a repeated text is never embedded twice, within a call or across calls.
- ``input_type`` is one of ``search_document``, ``search_query``, ``classification``,
  ``clustering``; wires with a task type get it mapped (Cohere ``input_type``, Gemini
  ``taskType``), the others ignore it (OpenAI, Ollama, Titan).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidInputError,
    LLMError,
    TokenLimitError,
)
from lexigram.ai.llm.pricing import usage_cost
from lexigram.ai.llm.providers.embedding_codecs import (
    EMBEDDING_CODECS,
    INPUT_TYPES,
    DecodedEmbeddings,
    Embedder,
    EmbeddingBatch,
    EmbeddingCodec,
    EmbeddingLimits,
)
from lexigram.ai.llm.providers.http import HTTPLLMClient
from lexigram.ai.llm.types import Usage
from lexigram.result import Err, Ok, Result

if TYPE_CHECKING:
    from lexigram.ai.llm.caching import LLMCache
    from lexigram.ai.llm.registry import ProviderRegistry

__all__ = [
    "EmbeddingClient",
    "Embeddings",
    "create_embedding_client",
    "embedding_client_for",
    "known_dimensions",
]

#: Default embedding model per provider, used when neither the call nor the config names one.
DEFAULT_EMBEDDING_MODELS: dict[str, str] = {
    "openai": "text-embedding-3-small",
    "azure-openai": "text-embedding-3-small",
    "mistral": "mistral-embed",
    "cohere": "embed-v4.0",
    "gemini": "gemini-embedding-001",
    "vertex": "text-embedding-005",
    "ollama": "nomic-embed-text",
    "bedrock": "amazon.titan-embed-text-v2:0",
}


#: Default vector sizes of well-known embedding models (from each provider's model page); the
#: router fails over only between routes whose vectors have the same size.
KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "mistral-embed": 1024,
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "cohere.embed-english-v3": 1024,
    "cohere.embed-multilingual-v3": 1024,
    "gemini-embedding-001": 3072,
    "text-embedding-005": 768,
    "amazon.titan-embed-text-v2:0": 1024,
    "nomic-embed-text": 768,
}


def known_dimensions(model: str, dimensions: int | None = None) -> int | None:
    """The vector size ``model`` answers with (``dimensions`` when asked), if known."""
    return dimensions if dimensions is not None else KNOWN_DIMENSIONS.get(model)


class Embeddings(list[list[float]]):
    """One vector per input text, in order: a ``list[list[float]]`` (so it is the contract's
    answer type) that also carries the ``model`` and ``provider`` that answered, ``usage``
    (input tokens), ``cost`` (USD from the price table, ``None`` when unpriced or all cached)
    and ``cached`` (texts served from the cache)."""

    __slots__ = ("cached", "cost", "model", "provider", "usage")

    def __init__(
        self,
        vectors: Iterable[list[float]] = (),
        model: str = "",
        provider: str = "",
        usage: Usage | None = None,
        cost: float | None = None,
        cached: int = 0,
    ) -> None:
        super().__init__(vectors)
        self.model = model
        self.provider = provider
        self.usage = usage if usage is not None else Usage()
        self.cost = cost
        self.cached = cached

    def __repr__(self) -> str:
        return (
            f"Embeddings({len(self)} x {self.dimensions}, model={self.model!r}, "
            f"provider={self.provider!r}, usage={self.usage!r}, cost={self.cost!r})"
        )

    @property
    def vectors(self) -> list[list[float]]:
        """The vectors as a plain list."""
        return list(self)

    @property
    def dimensions(self) -> int:
        """Length of the vectors (0 when there are none)."""
        return len(self[0]) if self else 0


class _HTTPEmbedder:
    """Batches encoded by an embedding codec, sent through an ``HTTPLLMClient``."""

    def __init__(self, client: HTTPLLMClient, codec: EmbeddingCodec) -> None:
        self.client = client
        self.codec = codec
        self.provider_name = client.provider_name

    def limits(self, model: str) -> EmbeddingLimits:
        return self.codec.limits(model, self.client.call_context(model))

    def count_tokens(self, text: str, model: str) -> tuple[int, bool]:
        from lexigram.ai.llm.tokens import shared_registry

        count = shared_registry().count(text, model)
        return int(count), not count.estimated

    async def embed_batch(
        self, batch: EmbeddingBatch, *, timeout: float | None, deadline: float | None
    ) -> DecodedEmbeddings:
        ctx = self.client.call_context(batch.model)
        try:
            http = self.codec.encode(batch, ctx)
        except orjson.JSONEncodeError as exc:  # a caller's extra option the body cannot hold
            raise InvalidInputError.at(
                "kwargs", f"an extra option cannot be sent as JSON ({exc})"
            ) from None
        body = await self.client.send_encoded(http, ctx, timeout=timeout, deadline=deadline)
        try:
            return self.codec.decode(body, batch, ctx)
        except LLMError as error:
            raise self.client.redact(error) from None


class EmbeddingClient:
    """Turns texts into vectors (``EmbeddingClientProtocol``). Build it with
    ``create_embedding_client``; use as ``async with`` or ``await close()``."""

    def __init__(
        self,
        client: AbstractLLMClient,
        embedder: Embedder,
        *,
        model: str | None = None,
        max_concurrency: int = 8,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.client = client
        self._embedder = embedder
        self.provider_name = embedder.provider_name
        self.default_model = model or DEFAULT_EMBEDDING_MODELS.get(self.provider_name, "")
        self.max_concurrency = max_concurrency

    def __repr__(self) -> str:
        return (
            f"EmbeddingClient(provider={self.provider_name!r}, model={self.default_model!r}, "
            f"client={self.client!r})"
        )

    async def __aenter__(self) -> EmbeddingClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying client's connections (and a local embedding model)."""
        close = getattr(self._embedder, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
        await self.client.close()

    # -- embed -----------------------------------------------------------------------------

    async def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        input_type: str | None = None,
        **kwargs: Any,
    ) -> Result[Embeddings, LLMError]:
        """One vector per text, in order (see ``_embed``); an ``embeddings {model}``
        OpenTelemetry span when the chat client is observed (``lexigram.ai.llm.otel``)."""
        from lexigram.ai.llm.middleware import embeddings_telemetry

        telemetry = embeddings_telemetry(self.client)
        if telemetry is None:
            return await self._embed(
                texts, model=model, dimensions=dimensions, input_type=input_type, **kwargs
            )
        return await telemetry.observe_embeddings(  # type: ignore[no-any-return]
            self.client,
            model or self.default_model,
            len(texts) if isinstance(texts, Sequence) else 0,
            lambda: self._embed(
                texts, model=model, dimensions=dimensions, input_type=input_type, **kwargs
            ),
        )

    async def _embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        input_type: str | None = None,
        **kwargs: Any,
    ) -> Result[Embeddings, LLMError]:
        """One vector per text, in order. ``cache=False`` skips the cache; ``timeout`` and
        ``deadline`` bound each batch as they bound ``complete``; other keyword arguments go
        into the request body (``extra``).

        Bad input (one string, a non-string item, an empty text, ``dimensions=0``, an unknown
        ``input_type``) is ``Err(InvalidInputError)`` before any request; a text longer than
        the model's per-input limit, where its tokenizer is available, ``Err(TokenLimitError)``."""
        use_cache = bool(kwargs.pop("cache", True))
        timeout = kwargs.pop("timeout", None)
        deadline_s = kwargs.pop("deadline", None)
        model = model or self.default_model
        try:
            items = _checked_texts(texts)
            _check_options(model, dimensions, input_type, self.provider_name)
        except InvalidInputError as error:
            error.provider, error.model = self.provider_name, model or None
            return Err(error)
        if not items:
            return Ok(Embeddings([], model, self.provider_name))
        for name, value in (("timeout", timeout), ("deadline", deadline_s)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
            ):
                return Err(
                    InvalidInputError.at(name, f"must be a positive number of seconds: {value!r}")
                )
        # The client's deadlines are on ``time.monotonic``.
        deadline = None if deadline_s is None else time.monotonic() + float(deadline_s)
        limits = self._embedder.limits(model)
        refused = self._preflight(items, model, limits)
        if refused is not None:
            return Err(refused)

        vectors: list[list[float] | None] = [None] * len(items)
        cache = self._cache() if use_cache else None
        keys: list[str] | None = None
        if cache is not None:
            keys = cache.embedding_keys(
                self.client.cache_scope,
                model,
                items,
                dimensions=dimensions,
                input_type=input_type,
                extra=kwargs,
            )
        # Distinct texts still to embed, each with every position it fills.
        todo: dict[str, list[int]] = {}
        cached = 0
        for i, text in enumerate(items):
            positions = todo.get(text)
            if positions is not None:
                positions.append(i)
                continue
            if cache is not None and keys is not None:
                hit = await cache.get_embedding(keys[i])
                if hit is not None:
                    vectors[i] = hit
                    cached += 1
                    continue
            todo[text] = [i]

        prompt_tokens = 0
        answered_model: str | None = None
        if todo:
            pending = list(todo)
            batches = _batches(pending, limits, self._sizes(pending, model, limits))
            gate = asyncio.Semaphore(self.max_concurrency)

            async def run(
                batch_texts: list[str],
            ) -> tuple[list[str], Result[DecodedEmbeddings, LLMError]]:
                batch = EmbeddingBatch(batch_texts, model, dimensions, input_type, kwargs)
                estimate = sum(_byte_bound(t) for t in batch_texts)
                async with gate:
                    result = await self.client.call_with_policies(
                        model,
                        lambda: self._embedder.embed_batch(
                            batch, timeout=timeout, deadline=deadline
                        ),
                        tokens=lambda: estimate,
                        deadline=deadline,
                    )
                return batch_texts, result

            tasks = [asyncio.ensure_future(run(b)) for b in batches]
            try:
                for finished in asyncio.as_completed(tasks):
                    batch_texts, result = await finished
                    if isinstance(result, Err):
                        return Err(result.error)
                    decoded = result.value
                    prompt_tokens += decoded.prompt_tokens
                    answered_model = answered_model or decoded.model
                    for text, vector in zip(batch_texts, decoded.vectors, strict=True):
                        for position in todo[text]:
                            vectors[position] = vector
                        if cache is not None and keys is not None:
                            await cache.put_embedding(keys[todo[text][0]], vector)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        usage = Usage.of(prompt_tokens, 0)
        cost = (
            usage_cost(usage, answered_model or "", model, provider=self.provider_name)
            if prompt_tokens
            else None
        )
        return Ok(
            Embeddings(
                [v for v in vectors if v is not None],
                answered_model or model,
                self.provider_name,
                usage,
                cost,
                cached,
            )
        )

    # -- pieces ----------------------------------------------------------------------------

    def _cache(self) -> LLMCache | None:
        from lexigram.ai.llm.caching import LLMCache

        cache = self.client.cache
        return cache if isinstance(cache, LLMCache) else None

    def _sizes(self, texts: list[str], model: str, limits: EmbeddingLimits) -> list[int] | None:
        """Tokens per text for batching under ``max_tokens``: the UTF-8 size (a bound for
        byte-level tokenizers) unless that would cut batches, then the model's own tokenizer
        where there is one, so long texts are not sent in needlessly small batches."""
        if limits.max_tokens is None:
            return None
        sizes = [_byte_bound(text) for text in texts]
        if sum(sizes) <= limits.max_tokens:
            return sizes
        first, exact = self._embedder.count_tokens(texts[0], model)
        if not exact:
            return sizes
        return [first] + [self._embedder.count_tokens(t, model)[0] for t in texts[1:]]

    def _preflight(
        self, texts: Sequence[str], model: str, limits: EmbeddingLimits
    ) -> TokenLimitError | None:
        """A ``TokenLimitError`` for the first text over the per-input limit, counted by the
        model's own tokenizer; texts short enough by their size alone are not tokenized."""
        limit = limits.max_text_tokens
        if limit is None:
            return None
        for i, text in enumerate(texts):
            if _byte_bound(text) <= limit:
                continue
            tokens, exact = self._embedder.count_tokens(text, model)
            if exact and tokens > limit:
                return TokenLimitError(
                    f"texts[{i}] has {tokens} tokens; {model!r} embeds at most {limit} "
                    "tokens of one text. Split or shorten it. No request was sent",
                    provider=self.provider_name,
                    model=model,
                    retryable=False,
                    code="context_length_exceeded",
                    details={"index": i, "tokens": tokens, "limit": limit},
                )
        return None


def _byte_bound(text: str) -> int:
    """An upper bound on the tokens of ``text`` for byte-level tokenizers: its UTF-8 size."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _batches(texts: list[str], limits: EmbeddingLimits, sizes: list[int] | None) -> list[list[str]]:
    """``texts`` cut in order into requests within the count limit and, with ``sizes`` (each
    text's tokens, or a bound on them), the token limit."""
    batches: list[list[str]] = []
    current: list[str] = []
    tokens = 0
    max_texts, max_tokens = limits.max_texts, limits.max_tokens
    for index, text in enumerate(texts):
        size = sizes[index] if sizes is not None else 0
        if current and (
            len(current) >= max_texts or (max_tokens is not None and tokens + size > max_tokens)
        ):
            batches.append(current)
            current, tokens = [], 0
        current.append(text)
        tokens += size
    if current:
        batches.append(current)
    return batches


def _checked_texts(texts: Any) -> list[str]:
    if isinstance(texts, str | bytes):
        raise InvalidInputError.at(
            "texts", "expected a sequence of strings, got one string; pass [text] to embed one"
        )
    if not isinstance(texts, Sequence):
        raise InvalidInputError.at(
            "texts", f"expected a sequence of strings, got {type(texts).__name__}"
        )
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError.at(f"texts[{i}]", f"expected a str, got {type(text).__name__}")
        if not text:
            raise InvalidInputError.at(f"texts[{i}]", "is empty; providers refuse empty texts")
    return items


def _check_options(model: str, dimensions: Any, input_type: Any, provider: str) -> None:
    if not model:
        raise InvalidInputError.at(
            "model", f"no embedding model given for provider {provider!r}: pass model=..."
        )
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise InvalidInputError.at("dimensions", f"expected a positive integer, got {dimensions!r}")
    if input_type is not None and input_type not in INPUT_TYPES:
        raise InvalidInputError.at(
            "input_type", f"expected one of {', '.join(INPUT_TYPES)}, got {input_type!r}"
        )


# -- building ------------------------------------------------------------------------------


def create_embedding_client(
    config: ClientConfig | str | None = None,
    registry: ProviderRegistry | None = None,
    *,
    max_concurrency: int = 8,
    **policies: Any,
) -> EmbeddingClient:
    """An embedding client: ``create_embedding_client("openai/text-embedding-3-small")``,
    ``create_embedding_client(ClientConfig(...))``; ``policies`` (``cache=``,
    ``rate_limiter=``) as for ``create_llm_client``. The model is the config's, else the
    provider's usual embedding model."""
    from lexigram.ai.llm.registry import create_llm_client

    client = create_llm_client(config, registry, **policies)
    model = client.config.model
    if not isinstance(client, HTTPLLMClient):
        model = None  # the local client: its model file
    return embedding_client_for(client, model=model, max_concurrency=max_concurrency)


def embedding_client_for(
    client: AbstractLLMClient, *, model: str | None = None, max_concurrency: int = 8
) -> EmbeddingClient:
    """An embedding client over an existing chat client (sharing its connections and
    policies); ``ConfigurationError`` when its provider has no embeddings API here.

    The client's own ``model`` is a chat model, so the embedding model is ``model``, else the
    config's ``extra["embedding_model"]``, else the provider's usual one."""
    model = model or client.config.extra.get("embedding_model")
    if isinstance(client, HTTPLLMClient):
        codec = EMBEDDING_CODECS.get(client.profile.codec)
        if codec is None:
            raise ConfigurationError(
                f"Provider {client.provider_name!r} has no embeddings API; use one of "
                f"{', '.join(sorted(DEFAULT_EMBEDDING_MODELS))} (or the local model)"
            )
        return EmbeddingClient(
            client, _HTTPEmbedder(client, codec), model=model, max_concurrency=max_concurrency
        )
    from lexigram.ai.llm.providers.local import LocalLLMClient

    if isinstance(client, LocalLLMClient):
        from lexigram.ai.llm.providers.local_embeddings import local_embedder

        embedder = local_embedder(client)
        return EmbeddingClient(
            client, embedder, model=model or embedder.spec.name, max_concurrency=1
        )
    raise ConfigurationError(
        f"{type(client).__name__} (provider {client.provider_name!r}) has no embeddings support"
    )
