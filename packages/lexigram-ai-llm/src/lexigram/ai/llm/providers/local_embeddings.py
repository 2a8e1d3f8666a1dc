"""Embeddings from the local GGUF model, in process (llama.cpp ``Llama(embedding=True)``).

LOW QUALITY: the bundled SmolLM2-135M-Instruct is a small chat model, not an embedding model.
Its mean-pooled, normalised hidden states are real vectors (a text is closest to itself, and
similar texts tend to be closer) but retrieval with them is far below a trained embedding
model. Use them offline, for tests and prototypes; point ``ClientConfig(model=...)`` at a GGUF
embedding model (nomic-embed-text, bge, e5...) for real work.

The embedding model is its own ``Llama`` instance (an embedding context cannot generate), loaded
on first use and run on one worker thread of its own, beside the chat model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING, Any

from lexigram.ai.llm.exceptions import ConfigurationError
from lexigram.ai.llm.providers.embedding_codecs import (
    DecodedEmbeddings,
    EmbeddingBatch,
    EmbeddingLimits,
)
from lexigram.ai.llm.providers.local import LoadOptions, ModelSpec, require_llama_cpp

if TYPE_CHECKING:
    from lexigram.ai.llm.providers.local import LocalLLMClient

__all__ = ["LocalEmbedder", "local_embedder"]

logger = logging.getLogger("lexigram.ai.llm")

# One llama.cpp call embeds this many texts (they share its context, n_ctx tokens).
_LOCAL_LIMITS = EmbeddingLimits(32, None, None)


class LocalEmbedder:
    """Embeds with a GGUF model through llama.cpp (see the module docstring on quality)."""

    provider_name = "local"

    def __init__(self, spec: ModelSpec, options: LoadOptions) -> None:
        require_llama_cpp()
        self.spec = spec
        self.options = options
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"lexigram-embed-{spec.name}"
        )

    def __repr__(self) -> str:
        return f"LocalEmbedder(model={self.spec.name!r}, path={str(self.spec.path)!r})"

    def limits(self, model: str) -> EmbeddingLimits:
        return _LOCAL_LIMITS

    def count_tokens(self, text: str, model: str) -> tuple[int, bool]:
        llama = self._load()
        return len(llama.tokenize(text.encode("utf-8"), add_bos=True)), True

    async def embed_batch(
        self, batch: EmbeddingBatch, *, timeout: float | None, deadline: float | None
    ) -> DecodedEmbeddings:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._embed, list(batch.texts))

    def _embed(self, texts: list[str]) -> DecodedEmbeddings:
        llama = self._load()
        vectors, tokens = llama.embed(texts, normalize=True, truncate=True, return_count=True)
        return DecodedEmbeddings([list(v) for v in vectors], tokens, self.spec.name)

    def _load(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                import llama_cpp

                kwargs = self.options.llama_kwargs()
                try:
                    self._llama = llama_cpp.Llama(
                        model_path=str(self.spec.path),
                        embedding=True,
                        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                        verbose=False,
                        **kwargs,
                    )
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ConfigurationError(
                        f"llama.cpp could not load {str(self.spec.path)!r} for embeddings "
                        f"({type(exc).__name__}: {exc})"
                    ) from exc
                logger.info("loaded local embedding model %s", self.spec.name)
            return self._llama

    def close(self) -> None:
        """Free the model and stop the worker."""
        self._worker.shutdown(wait=True)
        with self._load_lock:
            llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()


def local_embedder(client: LocalLLMClient) -> LocalEmbedder:
    """An embedder for the local client's default model file (a second ``Llama``)."""
    return LocalEmbedder(client._spec, client._load_options)
