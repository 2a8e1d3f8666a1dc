"""What cached completions cost in memory, next to what the memory cache reports.

    .venv/bin/python -m bench.cache_memory [N]

Stores N (default 20,000) small completions through ``LLMCache`` in a ``MemoryCacheBackend``
and prints the traced Python memory growth (tracemalloc), the RSS growth and the backend's
``stats.total_bytes``. A benchmark, not a test: it prints, it asserts nothing.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tracemalloc

from lexigram.ai.llm import LLMCache
from lexigram.ai.llm.types import ChatRequest, Completion, normalize_messages
from lexigram.cache import MemoryCacheBackend


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def main(count: int) -> None:
    backend = MemoryCacheBackend(max_entries=10**7, max_bytes=2**40)
    cache = LLMCache(backend)
    requests = [
        ChatRequest(
            messages=normalize_messages([{"role": "user", "content": f"question {i}"}]),
            model="gpt-test",
        )
        for i in range(count)
    ]
    answer = Completion(
        content="Paris is the capital of France.", model="gpt-test", provider="openai"
    )
    gc.collect()
    rss_before = _rss()
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    for request in requests:
        await cache.put(request, "openai@http://127.0.0.1/v1", answer)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    rss = _rss() - rss_before
    reported = backend.stats.total_bytes
    print(
        f"{count} entries: traced {traced / 1e6:.2f} MB, RSS {rss / 1e6:.2f} MB, "
        f"reported {reported / 1e6:.2f} MB ({traced / reported:.2f}x traced/reported)"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
