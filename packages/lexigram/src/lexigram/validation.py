"""Validation helpers shared by lexigram packages: secret values and how to show them."""

from __future__ import annotations

from pydantic import SecretStr

__all__ = ["SecretStr", "mask_secret"]

_VISIBLE_TAIL = 4
_MIN_LENGTH_TO_SHOW_TAIL = 12


def mask_secret(value: str) -> str:
    """Mask a secret for display: ``"***...abcd"``, showing at most its last 4 characters.

    Strings shorter than 12 characters are masked completely, since their tail says too much.
    """
    if len(value) < _MIN_LENGTH_TO_SHOW_TAIL:
        return "***"
    return f"***...{value[-_VISIBLE_TAIL:]}"
