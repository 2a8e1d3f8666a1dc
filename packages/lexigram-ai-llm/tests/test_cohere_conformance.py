"""The Cohere v2 chat API against its loopback server: the shared conformance suite."""

from __future__ import annotations

from harness.cohere_server import CohereServer
from harness.conformance import ConformanceSuite, Family

# Cohere has no error type or code: an over-long prompt is a 400 whose message starts "too many
# tokens" (errors reference), so it maps by status to ``InvalidRequestError``, not
# ``TokenLimitError``; and it has no content-filter error (its safety modes shape the answer).
# Those two kinds do not exist for this family.
COHERE_ERROR_KINDS = (
    "invalid_request",
    "auth",
    "permission",
    "quota",
    "not_found",
    "rate_limit",
    "server",
    "overloaded",
)


class TestCohere(ConformanceSuite):
    family = Family(
        name="cohere",
        server_cls=CohereServer,
        api_base=lambda s: s.url,
        model="command-a-03-2025",
        error_kinds=COHERE_ERROR_KINDS,
    )
