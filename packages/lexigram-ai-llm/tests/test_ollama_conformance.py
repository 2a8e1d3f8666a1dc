"""The Ollama native chat API against its loopback server: the shared conformance suite."""

from __future__ import annotations

from harness.conformance import ConformanceSuite, Family
from harness.ollama_server import OllamaServer

# Ollama has no content filter and no quota error, and an over-long prompt (when it cannot
# truncate the history) is a plain 400 ``{"error": "the input length exceeds the context
# length"}`` (server/routes.go): nothing but the message text sets it apart, so it maps by
# status to ``InvalidRequestError``. Those three kinds do not exist for this family.
OLLAMA_ERROR_KINDS = (
    "invalid_request",
    "auth",
    "permission",
    "not_found",
    "rate_limit",
    "server",
    "overloaded",
)


class TestOllama(ConformanceSuite):
    family = Family(
        name="ollama",
        server_cls=OllamaServer,
        api_base=lambda s: s.url,
        model="llama3.2",
        error_kinds=OLLAMA_ERROR_KINDS,
    )
