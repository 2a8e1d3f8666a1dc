"""Benchmarks of lexigram-ai-llm's client overhead against raw aiohttp and the official SDKs.

Run ``python -m bench`` (or ``--quick``) from the repository root; see ``README.md``.
"""
