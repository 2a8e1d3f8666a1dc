"""Protocols and shared value types of the lexigram packages.

Importing this package pulls in nothing beyond the standard library, ``lexigram.result``,
pydantic and typing-extensions.
"""

from lexigram.contracts.stream import AsyncStream

__all__ = ["AsyncStream"]
