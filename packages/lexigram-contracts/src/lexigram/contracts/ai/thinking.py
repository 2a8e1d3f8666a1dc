"""Reasoning ("thinking") configuration and results, shared by every provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ThinkingBlock", "ThinkingConfig", "ThinkingResult"]


class ThinkingConfig(BaseModel):
    """How much a model may reason before answering; mapped per provider.

    - ``suppress``: ask the provider not to think at all (where it can be turned off).
    - ``budget_tokens``: Anthropic ``budget_tokens``, Gemini ``thinkingBudget``, Bedrock and
      Ollama budgets.
    - ``level``: Gemini ``thinkingLevel`` (for example ``"low"`` or ``"high"``); Ollama ``think``.
    - ``effort``: OpenAI-style ``reasoning_effort`` (``"minimal"``, ``"low"``, ``"medium"``,
      ``"high"``).
    - ``include_thoughts``: ask for the reasoning text where the provider can return it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    suppress: bool = False
    budget_tokens: int = Field(default=10000, ge=0)
    level: str | None = None
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    include_thoughts: bool = True


@dataclass(frozen=True, slots=True)
class ThinkingBlock:
    """One reasoning block exactly as the provider sent it, kept so it can be sent back.

    ``signature`` is the provider's opaque proof (Anthropic ``signature``, Gemini
    ``thoughtSignature``); ``redacted`` blocks carry their encrypted ``data`` instead of text.
    ``origin`` names the wire family whose decoder made the block (``"anthropic"``,
    ``"gemini"``, ``"bedrock"``...): a signature or encrypted data is only sent back to the
    family that made it, so a history can move between providers. ``None`` (a block built by
    hand, an older history) is trusted as it is. It is provenance, not content: two blocks that
    differ only in origin compare equal.
    """

    content: str = ""
    signature: str | None = None
    redacted: bool = False
    data: str | None = None
    origin: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ThinkingResult:
    """The reasoning attached to a completion: joined text, last signature, token count, blocks."""

    content: str = ""
    signature: str | None = None
    tokens: int | None = None
    blocks: tuple[ThinkingBlock, ...] = ()

    @classmethod
    def from_blocks(
        cls, blocks: tuple[ThinkingBlock, ...], tokens: int | None = None
    ) -> ThinkingResult:
        """Join the text of ``blocks``; the signature is that of the last signed block."""
        signature = None
        for block in blocks:
            if block.signature:
                signature = block.signature
        return cls(
            content="".join(block.content for block in blocks),
            signature=signature,
            tokens=tokens,
            blocks=blocks,
        )
