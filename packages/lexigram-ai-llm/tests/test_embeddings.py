"""Embeddings over real HTTP on loopback: every wire's request shape, batching by the documented
limits, order, a failed batch retried alone, the per-text cache, cost, and refusals."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness.bedrock_server import use_test_credentials
from harness.embedding_server import EmbeddingServer, vector_for

from lexigram.ai.llm import ClientConfig, Embeddings, create_embedding_client
from lexigram.ai.llm.caching import LLMCache
from lexigram.ai.llm.embeddings import EmbeddingClient
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidInputError,
    LLMRateLimitError,
    TokenLimitError,
)
from lexigram.ai.llm.providers.embedding_codecs import decode_base64_floats
from lexigram.contracts.ai import EmbeddingClientProtocol
from lexigram.result import Err, Ok

KEY = "sk-test-embeddings-0123456789"


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmbeddingServer]:
    srv = EmbeddingServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def embedder(server: EmbeddingServer, provider: str = "openai", **config: Any) -> EmbeddingClient:
    base = {
        "openai": f"{server.url}/v1",
        "mistral": f"{server.url}/v1",
        "openai_compatible": f"{server.url}/v1",
    }.get(provider, server.url)
    values: dict[str, Any] = {
        "provider": provider,
        "api_key": KEY,
        "api_base": base,
        "max_retries": 2,
        "retry_base_delay": 0.001,
        "retry_max_delay": 0.01,
    }
    values.update(config)
    return create_embedding_client(ClientConfig(**values))


def texts_of(n: int) -> list[str]:
    return [f"short text number {i}" for i in range(n)]


# -- OpenAI -------------------------------------------------------------------------------


async def test_openai_embeds_in_order_with_usage_and_cost(server: EmbeddingServer) -> None:
    async with embedder(server) as client:
        result = await client.embed(["hello world", "the cat sat"])
    vectors = result.unwrap()
    assert isinstance(vectors, Embeddings)
    assert len(vectors) == 2
    assert vectors[0] == vector_for("hello world")
    assert list(vectors) == [vector_for("hello world"), vector_for("the cat sat")]
    assert vectors.model == "text-embedding-3-small"
    assert vectors.usage.prompt_tokens == 5
    # text-embedding-3-small: $0.02 per million tokens (data/models.json).
    assert vectors.cost == pytest.approx(5 * 0.02 / 1_000_000)
    sent = server.requests[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.json
    assert body == {
        "model": "text-embedding-3-small",
        "input": ["hello world", "the cat sat"],
        "encoding_format": "base64",
    }


async def test_dimensions_are_sent_and_base64_equals_floats(server: EmbeddingServer) -> None:
    async with (
        embedder(server) as b64,
        embedder(server, extra={"embedding_encoding": "float"}) as floats,
    ):
        as_b64 = (await b64.embed(["one text"], dimensions=16, cache=False)).unwrap()
        as_floats = (await floats.embed(["one text"], dimensions=16, cache=False)).unwrap()
    assert [r.json["encoding_format"] for r in server.requests] == ["base64", "float"]
    assert server.requests[0].json["dimensions"] == 16
    assert as_b64.vectors == as_floats.vectors == [vector_for("one text", 16)]
    assert as_b64.dimensions == 16


def test_base64_decoding_is_little_endian_float32() -> None:
    values = [0.5, -1.25, 3.0, 1e-3]
    raw = base64.b64encode(struct.pack("<4f", *values))
    decoded = decode_base64_floats(raw)
    assert decoded[:3] == [0.5, -1.25, 3.0]
    assert decoded[3] == pytest.approx(1e-3, rel=1e-6)


async def test_a_malformed_answer_is_a_typed_error(server: EmbeddingServer) -> None:
    from lexigram.ai.llm.exceptions import StreamError

    async with embedder(server, max_retries=0) as client:
        # A base64 vector whose byte length is not a multiple of 4 cannot be float32.
        bad = {"object": "list", "data": [{"index": 0, "embedding": "AAAAAAA="}], "usage": {}}
        server.raw_body = bad
        result = await client.embed(["x"])
    assert isinstance(result, Err) and isinstance(result.error, StreamError)


async def test_10000_texts_over_a_2048_limit_make_5_requests_in_order(
    server: EmbeddingServer,
) -> None:
    texts = texts_of(10_000)
    async with embedder(server) as client:
        vectors = (await client.embed(texts)).unwrap()
    assert len(server.requests) == 5
    assert sorted(len(r.json["input"]) for r in server.requests) == [1808, 2048, 2048, 2048, 2048]
    assert len(vectors) == 10_000
    assert vectors[0] == vector_for(texts[0])
    assert vectors[4321] == vector_for(texts[4321])
    assert vectors[9999] == vector_for(texts[9999])
    assert vectors.usage.prompt_tokens == sum(len(t.split()) for t in texts)


async def test_token_limits_cut_batches_by_the_models_tokenizer(
    server: EmbeddingServer,
) -> None:
    pytest.importorskip("tiktoken")
    # 2,048 texts of 80 tokens (400 bytes): 163,840 tokens fit one 300,000-token request,
    # though their 819,200 bytes would not.
    texts = [f"{i} " + "word " * 79 for i in range(2048)]
    async with embedder(server) as client:
        vectors = (await client.embed(texts)).unwrap()
    assert len(server.requests) == 1
    assert len(vectors) == 2048


async def test_token_limits_cut_batches(server: EmbeddingServer) -> None:
    pytest.importorskip("tiktoken")
    texts = [f"{i} " + "word " * 499 for i in range(1000)]  # 500 tokens each, 500,000 in all
    async with embedder(server) as client:
        vectors = (await client.embed(texts)).unwrap()
    from lexigram.ai.llm import TiktokenCounter

    counter = TiktokenCounter("text-embedding-3-small")  # the package's offline encodings
    batches = [r.json["input"] for r in server.requests]
    assert len(batches) == 2 and sum(len(b) for b in batches) == 1000
    tokens = [sum(counter.count(t) for t in batch) for batch in batches]
    assert all(n <= 300_000 for n in tokens)  # per request, by the model's tokenizer
    assert max(tokens) > 290_000  # and a request is filled, not cut by a size bound
    assert vectors[999] == vector_for(texts[999])


async def test_a_429_on_one_batch_is_retried_alone(server: EmbeddingServer) -> None:
    texts = texts_of(10_000)
    server.fail_once(texts[5000], 429, headers={"retry-after-ms": "1"})
    async with embedder(server) as client:
        vectors = (await client.embed(texts)).unwrap()
    assert len(server.requests) == 6  # five batches, one of them twice
    firsts = [r.json["input"][0] for r in server.requests]
    assert firsts.count(texts[4096]) == 2  # the batch holding texts[5000], sent again
    assert all(firsts.count(t) == 1 for t in firsts if t != texts[4096])
    assert [vectors[i] for i in (0, 5000, 9999)] == [vector_for(texts[i]) for i in (0, 5000, 9999)]


async def test_a_batch_that_keeps_failing_fails_the_call(server: EmbeddingServer) -> None:
    texts = texts_of(3000)
    for _ in range(3):
        server.fail_once(texts[2500], 429)
    async with embedder(server, max_retries=2) as client:
        result = await client.embed(texts)
    assert isinstance(result, Err)
    assert isinstance(result.error, LLMRateLimitError)
    assert result.error.provider == "openai"
    assert KEY not in repr(result.error) and KEY not in str(result.error)


async def test_the_cache_embeds_a_text_once(server: EmbeddingServer) -> None:
    cache = LLMCache()
    async with embedder(server, enable_cache=True) as client:
        client.client.cache = cache
        first = (await client.embed(["alpha", "beta", "alpha"])).unwrap()
        assert server.requests[-1].json["input"] == ["alpha", "beta"]  # a repeat is sent once
        second = (await client.embed(["beta", "gamma", "alpha"])).unwrap()
        assert server.requests[-1].json["input"] == ["gamma"]
        third = (await client.embed(["alpha", "beta"])).unwrap()
    assert len(server.requests) == 2  # the third call was served from the cache
    assert first.vectors == [vector_for("alpha"), vector_for("beta"), vector_for("alpha")]
    assert second.vectors == [vector_for("beta"), vector_for("gamma"), vector_for("alpha")]
    assert third.vectors == [vector_for("alpha"), vector_for("beta")]
    assert (second.cached, third.cached) == (2, 2)
    assert third.usage.prompt_tokens == 0 and third.cost is None


async def test_cache_keys_separate_dimensions_input_type_and_host(
    server: EmbeddingServer,
) -> None:
    cache = LLMCache()
    async with embedder(server) as a, embedder(server, provider="openai_compatible") as b:
        a.client.cache = cache
        b.client.cache = cache
        await a.embed(["same"])
        await a.embed(["same"], dimensions=4)
        await a.embed(["same"], input_type="search_query")
        await b.embed(["same"], model="text-embedding-3-small")
        await a.embed(["same"])  # the only hit
    assert len(server.requests) == 4


async def test_bad_input_is_refused_before_any_request(server: EmbeddingServer) -> None:
    async with embedder(server) as client:
        cases: list[tuple[Any, dict[str, Any], str]] = [
            ("one string", {}, "texts"),
            (["ok", 3], {}, "texts[1]"),
            (["ok", ""], {}, "texts[1]"),
            (None, {}, "texts"),
            (["ok"], {"dimensions": 0}, "dimensions"),
            (["ok"], {"input_type": "query"}, "input_type"),
            (["ok"], {"timeout": -1}, "timeout"),
            (["ok"], {"user": object()}, "kwargs"),
        ]
        for texts, options, field in cases:
            result = await client.embed(texts, **options)
            assert isinstance(result, Err), (texts, options)
            assert isinstance(result.error, InvalidInputError)
            assert field in str(result.error)
        assert (await client.embed([])).unwrap().vectors == []
    assert server.requests == []


async def test_an_over_long_text_is_refused_with_token_limit_error(
    server: EmbeddingServer,
) -> None:
    pytest.importorskip("tiktoken")
    long_text = "word " * 9000  # 9,000 tokens; text-embedding-3-small reads 8,192
    async with embedder(server) as client:
        result = await client.embed(["fine", long_text])
    assert isinstance(result, Err) and isinstance(result.error, TokenLimitError)
    assert "texts[1]" in str(result.error)
    assert server.requests == []


async def test_the_client_satisfies_the_contract(server: EmbeddingServer) -> None:
    async with embedder(server) as client:
        assert isinstance(client, EmbeddingClientProtocol)
        result = await client.embed(["x"])
    assert isinstance(result, Ok)
    # The answer is the contract's list[list[float]], with usage and cost on it.
    assert isinstance(result.value, list) and result.value == [vector_for("x")]
    assert type(result.value[0]) is list and result.value.usage.prompt_tokens == 1


async def test_mistral_is_openai_shaped_with_floats(server: EmbeddingServer) -> None:
    async with embedder(server, provider="mistral") as client:
        vectors = (await client.embed(["bonjour"])).unwrap()
    assert vectors[0] == vector_for("bonjour")
    assert server.requests[-1].json == {
        "model": "mistral-embed",
        "input": ["bonjour"],
        "encoding_format": "float",
    }


def test_a_provider_without_embeddings_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no embeddings API"):
        create_embedding_client(ClientConfig(provider="anthropic", api_key="k"))


# -- Cohere, Ollama, Gemini, Bedrock ------------------------------------------------------


async def test_cohere_v2_embed_maps_input_type_default_search_document(
    server: EmbeddingServer,
) -> None:
    async with embedder(server, provider="cohere") as client:
        docs = (await client.embed(["a doc", "another doc"])).unwrap()
        query = (await client.embed(["a query"], input_type="search_query")).unwrap()
    first, second = server.requests
    assert first.path == "/v2/embed"
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.json == {
        "model": "embed-v4.0",
        "texts": ["a doc", "another doc"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    assert second.json["input_type"] == "search_query"
    assert docs.vectors == [vector_for("a doc"), vector_for("another doc")]
    assert query.usage.prompt_tokens == 2
    assert query.cost == pytest.approx(2 * 0.12 / 1_000_000)  # embed-v4.0, data/models.json


async def test_cohere_batches_at_96_texts(server: EmbeddingServer) -> None:
    async with embedder(server, provider="cohere") as client:
        vectors = (await client.embed(texts_of(200))).unwrap()
    assert sorted(len(r.json["texts"]) for r in server.requests) == [8, 96, 96]
    assert vectors[199] == vector_for(texts_of(200)[199])


async def test_ollama_api_embed(server: EmbeddingServer) -> None:
    async with embedder(server, provider="ollama", api_key=None) as client:
        vectors = (await client.embed(["why is the sky blue?"], dimensions=4)).unwrap()
    sent = server.requests[-1]
    assert sent.path == "/api/embed"
    assert sent.json == {
        "model": "nomic-embed-text",
        "input": ["why is the sky blue?"],
        "dimensions": 4,
    }
    assert vectors[0] == vector_for("why is the sky blue?", 4)
    assert vectors.model == "nomic-embed-text"
    assert vectors.usage.prompt_tokens == 5


async def test_gemini_batch_embed_contents_with_task_type(server: EmbeddingServer) -> None:
    async with embedder(server, provider="gemini") as client:
        vectors = (
            await client.embed(["what is life?", "x"], input_type="search_query", dimensions=8)
        ).unwrap()
    sent = server.requests[-1]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.json == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "what is life?"}]},
                "taskType": "RETRIEVAL_QUERY",
                "outputDimensionality": 8,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "x"}]},
                "taskType": "RETRIEVAL_QUERY",
                "outputDimensionality": 8,
            },
        ]
    }
    assert vectors.vectors == [vector_for("what is life?"), vector_for("x")]


async def test_vertex_predict_with_task_type(server: EmbeddingServer) -> None:
    extra = {"project": "p1", "location": "us-central1", "access_token": "ya29.given"}
    async with embedder(server, provider="vertex", api_key=None, extra=extra) as client:
        vectors = (
            await client.embed(["a doc", "b doc"], input_type="search_document", dimensions=8)
        ).unwrap()
    sent = server.requests[-1]
    assert sent.path == (
        "/v1/projects/p1/locations/us-central1/publishers/google/models/text-embedding-005:predict"
    )
    assert sent.headers["authorization"] == "Bearer ya29.given"
    assert sent.json == {
        "instances": [
            {"content": "a doc", "task_type": "RETRIEVAL_DOCUMENT"},
            {"content": "b doc", "task_type": "RETRIEVAL_DOCUMENT"},
        ],
        "parameters": {"outputDimensionality": 8},
    }
    assert vectors.vectors == [vector_for("a doc"), vector_for("b doc")]
    assert vectors.usage.prompt_tokens == 4


async def test_bedrock_titan_is_sigv4_signed_one_text_per_call(
    server: EmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_test_credentials(monkeypatch)
    async with embedder(server, provider="bedrock", api_key=None) as client:
        vectors = (await client.embed(["one", "two", "three"], dimensions=8)).unwrap()
    assert server.rejections == []
    assert len(server.requests) == 3
    assert {r.path for r in server.requests} == {"/model/amazon.titan-embed-text-v2:0/invoke"}
    assert sorted(r.json["inputText"] for r in server.requests) == ["one", "three", "two"]
    assert all(r.json["dimensions"] == 8 for r in server.requests)
    assert server.requests[0].headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert vectors.vectors == [vector_for("one"), vector_for("two"), vector_for("three")]
    assert vectors.usage.prompt_tokens == 3


async def test_bedrock_cohere_embed_with_input_type(
    server: EmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_test_credentials(monkeypatch)
    model = "cohere.embed-english-v3"
    async with embedder(server, provider="bedrock", api_key=None, model=model) as client:
        vectors = (await client.embed(["a", "b"], input_type="clustering")).unwrap()
    assert server.rejections == []
    sent = server.requests[-1]
    assert sent.path == f"/model/{model}/invoke"
    assert sent.json == {"texts": ["a", "b"], "input_type": "clustering"}
    assert vectors.vectors == [vector_for("a"), vector_for("b")]


async def test_bedrock_with_a_wrong_secret_is_refused(
    server: EmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_test_credentials(monkeypatch)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    async with embedder(server, provider="bedrock", api_key=None, max_retries=0) as client:
        result = await client.embed(["one"])
    assert isinstance(result, Err)
    assert server.rejections == ["InvalidSignatureException"]
    assert "not-the-secret" not in str(result.error)


# -- DI and command line ------------------------------------------------------------------


async def test_llm_module_registers_an_embedding_client(server: EmbeddingServer) -> None:
    from lexigram import Application
    from lexigram.ai.llm import LLMModule

    config = ClientConfig(
        provider="openai", model="gpt-4o-mini", api_key=KEY, api_base=f"{server.url}/v1"
    )
    async with Application.boot(modules=[LLMModule.configure(config)]) as app:
        embedder = await app.container.resolve(EmbeddingClientProtocol)
        vectors = (await embedder.embed(["from the container"])).unwrap()
    assert vectors[0] == vector_for("from the container")
    # The chat model is not an embedding model: the provider's usual one is used.
    assert server.requests[-1].json["model"] == "text-embedding-3-small"


class RecordingLimiter:
    """A user's own rate-limit policy (the RateLimitPolicy protocol): records each acquire."""

    def __init__(self) -> None:
        self.acquired: list[tuple[str, str, int]] = []

    async def acquire(self, provider: str, model: str, tokens: int) -> None:
        self.acquired.append((provider, model, tokens))

    def update_from_headers(self, provider: str, model: str, headers: Any) -> None:
        pass


async def test_batches_share_the_chat_clients_rate_limiter_and_breaker(
    server: EmbeddingServer,
) -> None:
    limiter = RecordingLimiter()
    config = ClientConfig(
        provider="openai",
        api_key=KEY,
        api_base=f"{server.url}/v1",
        max_retries=0,
        breaker_failure_threshold=2,
    )
    async with create_embedding_client(config, rate_limiter=limiter) as client:
        assert (await client.embed(texts_of(5000))).is_ok()
        assert [a[:2] for a in limiter.acquired] == [("openai", "text-embedding-3-small")] * 3
        for _ in range(2):
            server.fail_once("boom", 500, {"error": {"message": "down", "type": "server_error"}})
            assert (await client.embed(["boom"])).is_err()
        # Two provider failures opened the breaker for this provider and model: no request.
        sent = len(server.requests)
        result = await client.embed(["after"])
        assert isinstance(result, Err) and result.error.code == "circuit_open"
        assert len(server.requests) == sent
