"""Embeddings from the bundled GGUF through llama.cpp (a second ``Llama`` with embedding=True):
real vectors of the model's dimension. Slow: loads the model."""

from __future__ import annotations

import math

import pytest

from lexigram.ai.llm import ClientConfig, create_embedding_client

pytestmark = pytest.mark.slow

pytest.importorskip("llama_cpp")


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def test_the_local_model_returns_real_vectors_of_its_dimension() -> None:
    import llama_cpp

    from lexigram.ai.llm.providers.local import bundled_model_path

    reader = llama_cpp.Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    arch = reader.metadata["general.architecture"]
    width = int(reader.metadata[f"{arch}.embedding_length"])  # the GGUF's own hidden size
    reader.close()
    texts = [
        "The cat sat on the mat.",
        "Quarterly revenue grew by four percent.",
        "The cat sat on the mat.",
    ]
    async with create_embedding_client(ClientConfig(provider="local")) as client:
        vectors = (await client.embed(texts, cache=False)).unwrap()
    assert len(vectors) == 3
    assert {len(v) for v in vectors} == {width}
    assert vectors.provider == "local"
    assert vectors.usage.prompt_tokens > 0
    assert cosine(vectors[0], vectors[2]) == pytest.approx(1.0, abs=1e-6)
    assert cosine(vectors[0], vectors[1]) < 0.99
    assert all(math.isfinite(x) for v in vectors for x in v)
