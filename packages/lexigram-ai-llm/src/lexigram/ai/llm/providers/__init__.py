"""Wire families (codecs) and provider profiles.

Each family lives in one module exposing ``CODEC`` and ``PROFILES``; modules are imported the
first time one of their providers is used, so unused families cost nothing at import.
"""

from __future__ import annotations

__all__ = ["BUILTIN_PROVIDERS", "FAMILY_MODULES"]

# Wire family -> module holding its CODEC and PROFILES.
FAMILY_MODULES: dict[str, str] = {
    "openai": "lexigram.ai.llm.providers.openai",
    "anthropic": "lexigram.ai.llm.providers.anthropic",
    "gemini": "lexigram.ai.llm.providers.gemini",
    "ollama": "lexigram.ai.llm.providers.ollama",
    "cohere": "lexigram.ai.llm.providers.cohere",
    "bedrock": "lexigram.ai.llm.providers.bedrock",
    "responses": "lexigram.ai.llm.providers.responses",
}

# Built-in provider name -> wire family. ``local`` is not HTTP: its factory lives in
# ``lexigram.ai.llm.providers.local``.
BUILTIN_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "azure-openai": "openai",
    "openrouter": "openai",
    "groq": "openai",
    "deepseek": "openai",
    "together": "openai",
    "fireworks": "openai",
    "mistral": "openai",
    "xai": "openai",
    "cloudflare": "openai",
    "openai_compatible": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "vertex": "gemini",
    "ollama": "ollama",
    "cohere": "cohere",
    "bedrock": "bedrock",
    "openai_responses": "responses",
    "azure-openai-responses": "responses",
}
