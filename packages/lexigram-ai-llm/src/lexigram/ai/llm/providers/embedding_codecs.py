"""Embedding wires as pure codecs: texts to an ``HTTPRequest``, a body back to vectors.

One codec per wire family that has an embeddings endpoint:

- ``openai``: ``POST {base}/embeddings`` (OpenAI, Azure OpenAI, Mistral and every
  OpenAI-compatible profile); ``encoding_format=base64`` where the host is known to take it.
- ``cohere``: ``POST /v2/embed`` (``input_type`` is required there: ours, default
  ``search_document``).
- ``ollama``: ``POST /api/embed``.
- ``gemini``: ``POST …:batchEmbedContents`` (Google AI) or ``…:predict`` (Vertex AI).
- ``bedrock``: ``POST /model/{id}/invoke`` for Titan text embeddings and Cohere embed models.

Errors are mapped by the chat codec of the same family (the client sends through it), so
each family keeps one error mapper.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from urllib.parse import quote

import orjson

from lexigram.ai.llm.exceptions import InvalidInputError, LLMError
from lexigram.ai.llm.providers._codec_common import (
    SHAPE_ERRORS,
    apply_extra_body,
    parse_answer_object,
    request_headers,
    stream_error,
)
from lexigram.ai.llm.providers.base import CallContext, HTTPRequest

__all__ = [
    "EMBEDDING_CODECS",
    "INPUT_TYPES",
    "DecodedEmbeddings",
    "Embedder",
    "EmbeddingBatch",
    "EmbeddingCodec",
    "EmbeddingLimits",
    "decode_base64_floats",
]

#: Our ``input_type`` vocabulary (Cohere's, the richest); each wire maps it or ignores it.
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


@dataclass(frozen=True, slots=True)
class EmbeddingBatch:
    """One request's worth of texts, with the call's options."""

    texts: Sequence[str]
    model: str
    dimensions: int | None = None
    input_type: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmbeddingLimits:
    """What one request may carry: texts, tokens in all, tokens in one text (``None``: no
    documented bound)."""

    max_texts: int
    max_tokens: int | None = None
    max_text_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class DecodedEmbeddings:
    """A batch's vectors in input order, the input tokens billed, and the model that answered."""

    vectors: list[list[float]]
    prompt_tokens: int = 0
    model: str | None = None


class EmbeddingCodec(Protocol):
    """One embeddings wire, as pure functions."""

    name: str

    def limits(self, model: str, ctx: CallContext) -> EmbeddingLimits:
        """The per-request bounds for ``model`` (``extra`` may lower them)."""
        ...

    def encode(self, batch: EmbeddingBatch, ctx: CallContext) -> HTTPRequest:
        """The HTTP request for ``batch`` (no auth headers)."""
        ...

    def decode(self, body: bytes, batch: EmbeddingBatch, ctx: CallContext) -> DecodedEmbeddings:
        """The vectors of a 2xx body; ``LLMError`` when it does not hold one per text."""
        ...


class Embedder(Protocol):
    """How one batch reaches a model: over HTTP through a codec, or in process (local)."""

    provider_name: str

    def limits(self, model: str) -> EmbeddingLimits:
        """The per-request bounds for ``model``."""
        ...

    async def embed_batch(
        self, batch: EmbeddingBatch, *, timeout: float | None, deadline: float | None
    ) -> DecodedEmbeddings:
        """The batch's vectors; raises ``LLMError``."""
        ...

    def count_tokens(self, text: str, model: str) -> tuple[int, bool]:
        """Tokens of ``text`` and whether the count is exact (the model's own tokenizer)."""
        ...


# -- helpers -------------------------------------------------------------------------------

_LITTLE_ENDIAN = sys.byteorder == "little"


def decode_base64_floats(data: str | bytes) -> list[float]:
    """Little-endian float32 values from base64 (OpenAI's ``encoding_format=base64``).

    ``memoryview.cast("f").tolist()`` is the fastest way without numpy (ahead of
    ``struct.unpack`` and ``array.frombytes``: bench/embeddings.py); a big-endian machine
    swaps the bytes through ``array``."""
    raw = base64.b64decode(data)
    if _LITTLE_ENDIAN:
        # A float cast gives floats; typeshed types every tolist() as list[int].
        return cast("list[float]", memoryview(raw).cast("f").tolist())
    values = array("f")
    values.frombytes(raw)
    values.byteswap()
    return values.tolist()


def _malformed(what: str, body: bytes, ctx: CallContext) -> LLMError:
    return stream_error(f"{what}; it is not an embeddings answer", ctx, data=body)


def _checked(
    vectors: list[list[float]], batch: EmbeddingBatch, body: bytes, ctx: CallContext
) -> list[list[float]]:
    if len(vectors) != len(batch.texts):
        raise _malformed(
            f"The answer holds {len(vectors)} vectors for {len(batch.texts)} texts", body, ctx
        )
    return vectors


def _float_vector(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise TypeError("a vector is not a list")
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _limits(ctx: CallContext, default: EmbeddingLimits) -> EmbeddingLimits:
    """``default`` lowered (never raised) by ``extra={"embedding_batch_size": n}``."""
    size = ctx.options.get("embedding_batch_size")
    if isinstance(size, int) and not isinstance(size, bool) and 0 < size < default.max_texts:
        return EmbeddingLimits(size, default.max_tokens, default.max_text_tokens)
    return default


def _input_type(batch: EmbeddingBatch, table: Mapping[str, str], default: str | None) -> Any:
    if batch.input_type is None:
        return default
    return table[batch.input_type]


# -- OpenAI and every OpenAI-shaped host ---------------------------------------------------

# Documented: 2,048 inputs per request, 300,000 tokens in all, 8,192 per input
# (https://platform.openai.com/docs/api-reference/embeddings/create).
_OPENAI_LIMITS = EmbeddingLimits(2048, 300_000, 8192)
# Mistral documents a token bound per request (16,384 for mistral-embed) but no count of
# inputs; 512 is our own choice, well inside it for short texts.
_MISTRAL_LIMITS = EmbeddingLimits(512, 16_384, 8192)
# Hosts known to take ``encoding_format=base64`` (the OpenAI SDK's default); others get
# floats unless ``extra={"embedding_encoding": "base64"}``.
_BASE64_PROFILES = frozenset({"openai", "azure-openai"})


class OpenAIEmbeddingCodec:
    """``POST {base}/embeddings``: ``{"model", "input", "dimensions", "encoding_format"}``."""

    name = "openai"

    def limits(self, model: str, ctx: CallContext) -> EmbeddingLimits:
        return _limits(ctx, _MISTRAL_LIMITS if ctx.provider == "mistral" else _OPENAI_LIMITS)

    def encode(self, batch: EmbeddingBatch, ctx: CallContext) -> HTTPRequest:
        options = ctx.options
        encoding = options.get("embedding_encoding") or (
            "base64" if ctx.profile.name in _BASE64_PROFILES else "float"
        )
        body: dict[str, Any] = {
            "model": batch.model,
            "input": list(batch.texts),
            "encoding_format": encoding,
        }
        if batch.dimensions is not None:
            # Mistral's codestral-embed calls it output_dimension.
            key = "output_dimension" if ctx.provider == "mistral" else "dimensions"
            body[key] = batch.dimensions
        apply_extra_body(body, batch.extra)
        path = options.get("embeddings_path", "/embeddings").format(model=batch.model)
        url = ctx.base_url + path
        query = options.get("query")
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return HTTPRequest("POST", url, request_headers(batch.extra), orjson.dumps(body))

    def decode(self, body: bytes, batch: EmbeddingBatch, ctx: CallContext) -> DecodedEmbeddings:
        data = parse_answer_object(body, ctx, what="an embeddings list", who="The provider")
        try:
            items = data["data"]
            if len(items) > 1 and any(item.get("index") != i for i, item in enumerate(items)):
                items = sorted(items, key=lambda item: item["index"])
            vectors = [
                decode_base64_floats(e) if isinstance(e, str) else _float_vector(e)
                for e in (item["embedding"] for item in items)
            ]
            usage = data.get("usage") or {}
            tokens = _int(usage.get("prompt_tokens", usage.get("total_tokens")))
            model = data.get("model")
        except (*SHAPE_ERRORS, ValueError) as exc:
            raise _malformed(f"The answer has an unexpected shape ({exc})", body, ctx) from None
        return DecodedEmbeddings(_checked(vectors, batch, body, ctx), tokens, model)


# -- Cohere v2 -----------------------------------------------------------------------------

# Documented: at most 96 texts per call (https://docs.cohere.com/reference/embed).
_COHERE_LIMITS = EmbeddingLimits(96, None, None)
_COHERE_INPUT_TYPES = {name: name for name in INPUT_TYPES}


class CohereEmbeddingCodec:
    """``POST /v2/embed``: ``{"model", "texts", "input_type", "embedding_types": ["float"]}``."""

    name = "cohere"

    def limits(self, model: str, ctx: CallContext) -> EmbeddingLimits:
        return _limits(ctx, _COHERE_LIMITS)

    def encode(self, batch: EmbeddingBatch, ctx: CallContext) -> HTTPRequest:
        body: dict[str, Any] = {
            "model": batch.model,
            "texts": list(batch.texts),
            # Required by v2; a store of documents is the common case.
            "input_type": _input_type(batch, _COHERE_INPUT_TYPES, "search_document"),
            "embedding_types": ["float"],
        }
        if batch.dimensions is not None:
            body["output_dimension"] = batch.dimensions
        apply_extra_body(body, batch.extra)
        return HTTPRequest(
            "POST", ctx.base_url + "/v2/embed", request_headers(batch.extra), orjson.dumps(body)
        )

    def decode(self, body: bytes, batch: EmbeddingBatch, ctx: CallContext) -> DecodedEmbeddings:
        data = parse_answer_object(body, ctx, what="an embed response", who="Cohere")
        try:
            embeddings = data["embeddings"]
            raw = embeddings["float"] if isinstance(embeddings, dict) else embeddings
            vectors = [_float_vector(v) for v in raw]
            billed = (data.get("meta") or {}).get("billed_units") or {}
            tokens = _int(billed.get("input_tokens"))
        except SHAPE_ERRORS as exc:
            raise _malformed(f"The answer has an unexpected shape ({exc})", body, ctx) from None
        return DecodedEmbeddings(_checked(vectors, batch, body, ctx), tokens, None)


# -- Ollama --------------------------------------------------------------------------------

# Ollama documents no bound on ``input``; 512 per request is our choice (the server embeds
# them one context at a time anyway).
_OLLAMA_LIMITS = EmbeddingLimits(512, None, None)


class OllamaEmbeddingCodec:
    """``POST /api/embed``: ``{"model", "input", "dimensions"}`` -> ``{"embeddings"}``."""

    name = "ollama"

    def limits(self, model: str, ctx: CallContext) -> EmbeddingLimits:
        return _limits(ctx, _OLLAMA_LIMITS)

    def encode(self, batch: EmbeddingBatch, ctx: CallContext) -> HTTPRequest:
        body: dict[str, Any] = {"model": batch.model, "input": list(batch.texts)}
        if batch.dimensions is not None:
            body["dimensions"] = batch.dimensions
        apply_extra_body(body, batch.extra)
        return HTTPRequest(
            "POST", ctx.base_url + "/api/embed", request_headers(batch.extra), orjson.dumps(body)
        )

    def decode(self, body: bytes, batch: EmbeddingBatch, ctx: CallContext) -> DecodedEmbeddings:
        data = parse_answer_object(body, ctx, what="an embed response", who="Ollama")
        try:
            vectors = [_float_vector(v) for v in data["embeddings"]]
            tokens = _int(data.get("prompt_eval_count"))
            model = data.get("model")
        except SHAPE_ERRORS as exc:
            raise _malformed(f"The answer has an unexpected shape ({exc})", body, ctx) from None
        return DecodedEmbeddings(_checked(vectors, batch, body, ctx), tokens, model)


# -- Gemini (Google AI) and Vertex AI ------------------------------------------------------

# Documented: batchEmbedContents takes at most 100 requests; gemini-embedding-001 reads 2,048
# tokens of each text (https://ai.google.dev/gemini-api/docs/embeddings). Vertex's predict
# takes 250 instances and 20,000 tokens for text-embedding-005
# (https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings).
_GEMINI_LIMITS = EmbeddingLimits(100, None, 2048)
_VERTEX_LIMITS = EmbeddingLimits(250, 20_000, 2048)
_GEMINI_TASK_TYPES = {
    "search_document": "RETRIEVAL_DOCUMENT",
    "search_query": "RETRIEVAL_QUERY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
}


class GeminiEmbeddingCodec:
    """Google AI ``:batchEmbedContents`` (``taskType``, ``outputDimensionality`` per
    request); Vertex AI ``:predict`` (``instances`` with ``task_type``)."""

    name = "gemini"

    def limits(self, model: str, ctx: CallContext) -> EmbeddingLimits:
        return _limits(ctx, _VERTEX_LIMITS if ctx.options.get("vertex") else _GEMINI_LIMITS)

    def encode(self, batch: EmbeddingBatch, ctx: CallContext) -> HTTPRequest:
        from lexigram.ai.llm.providers.gemini import _model_url

        task = _input_type(batch, _GEMINI_TASK_TYPES, None)
        url = _model_url(batch.model, ctx)
        body: dict[str, Any]
        if ctx.options.get("vertex"):
            instances = []
            for text in batch.texts:
                instance: dict[str, Any] = {"content": text}
                if task is not None:
                    instance["task_type"] = task
                instances.append(instance)
            body = {"instances": instances}
            if batch.dimensions is not None:
                body["parameters"] = {"outputDimensionality": batch.dimensions}
            url += ":predict"
        else:
            name = url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1]  # models/{model}
            requests = []
            for text in batch.texts:
                one: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
                if task is not None:
                    one["taskType"] = task
                if batch.dimensions is not None:
                    one["outputDimensionality"] = batch.dimensions
                requests.append(one)
            body = {"requests": requests}
            url += ":batchEmbedContents"
        apply_extra_body(body, batch.extra)
        return HTTPRequest("POST", url, request_headers(batch.extra), orjson.dumps(body))

    def decode(self, body: bytes, batch: EmbeddingBatch, ctx: CallContext) -> DecodedEmbeddings:
        data = parse_answer_object(body, ctx, what="an embeddings answer", who="Gemini")
        tokens = 0
        try:
            if ctx.options.get("vertex"):
                vectors = []
                for prediction in data["predictions"]:
                    embedding = prediction["embeddings"]
                    vectors.append(_float_vector(embedding["values"]))
                    tokens += _int((embedding.get("statistics") or {}).get("token_count"))
            else:  # Google AI reports no usage for embeddings
                vectors = [_float_vector(e["values"]) for e in data["embeddings"]]
        except SHAPE_ERRORS as exc:
            raise _malformed(f"The answer has an unexpected shape ({exc})", body, ctx) from None
        return DecodedEmbeddings(_checked(vectors, batch, body, ctx), tokens, None)


# -- Bedrock InvokeModel -------------------------------------------------------------------

# Titan text embeddings take one text per call (8,192 tokens for v2); Cohere embed on
# Bedrock 96 texts (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html,
# .../model-parameters-embed.html).
_TITAN_LIMITS = EmbeddingLimits(1, None, 8192)
_BEDROCK_COHERE_LIMITS = EmbeddingLimits(96, None, None)


def _is_bedrock_cohere(model: str) -> bool:
    # "cohere.embed-english-v3", or an inference profile such as "us.cohere.embed-v4:0".
    return "cohere.embed" in model


class BedrockEmbeddingCodec:
    """``POST /model/{id}/invoke``: Titan ``{"inputText", "dimensions"}`` or Cohere
    ``{"texts", "input_type"}``; signed by the client's SigV4 signer."""

    name = "bedrock"

    def limits(self, model: str, ctx: CallContext) -> EmbeddingLimits:
        return _limits(ctx, _BEDROCK_COHERE_LIMITS if _is_bedrock_cohere(model) else _TITAN_LIMITS)

    def encode(self, batch: EmbeddingBatch, ctx: CallContext) -> HTTPRequest:
        body: dict[str, Any]
        if _is_bedrock_cohere(batch.model):
            body = {
                "texts": list(batch.texts),
                "input_type": _input_type(batch, _COHERE_INPUT_TYPES, "search_document"),
            }
            if batch.dimensions is not None:
                body["output_dimension"] = batch.dimensions
        else:
            if len(batch.texts) != 1:
                raise InvalidInputError.at("texts", "a Titan embedding request holds one text")
            body = {"inputText": batch.texts[0]}
            if batch.dimensions is not None:
                body["dimensions"] = batch.dimensions
        apply_extra_body(body, batch.extra)
        url = f"{ctx.base_url}/model/{quote(batch.model, safe='')}/invoke"
        headers = {"Accept": "application/json", **request_headers(batch.extra)}
        return HTTPRequest("POST", url, headers, orjson.dumps(body))

    def decode(self, body: bytes, batch: EmbeddingBatch, ctx: CallContext) -> DecodedEmbeddings:
        data = parse_answer_object(body, ctx, what="an embeddings answer", who="Bedrock")
        try:
            if _is_bedrock_cohere(batch.model):
                embeddings = data["embeddings"]
                raw = embeddings["float"] if isinstance(embeddings, dict) else embeddings
                vectors = [_float_vector(v) for v in raw]
                tokens = 0  # reported only in the X-Amzn-Bedrock-Input-Token-Count header
            else:
                vectors = [_float_vector(data["embedding"])]
                tokens = _int(data.get("inputTextTokenCount"))
        except SHAPE_ERRORS as exc:
            raise _malformed(f"The answer has an unexpected shape ({exc})", body, ctx) from None
        return DecodedEmbeddings(_checked(vectors, batch, body, ctx), tokens, None)


#: Chat wire family -> its embeddings codec. ``responses`` hosts are OpenAI's.
EMBEDDING_CODECS: dict[str, EmbeddingCodec] = {
    "openai": OpenAIEmbeddingCodec(),
    "responses": OpenAIEmbeddingCodec(),
    "cohere": CohereEmbeddingCodec(),
    "ollama": OllamaEmbeddingCodec(),
    "gemini": GeminiEmbeddingCodec(),
    "bedrock": BedrockEmbeddingCodec(),
}
