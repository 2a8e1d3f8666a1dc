"""Tokens per second of the bundled local model: llama-cpp-python alone next to our ``local``
provider, with the same settings (threads, batch size, greedy sampling, the same prompt and
answer), so the provider's own cost per token shows as the gap between the two.

    .venv/bin/python -m bench.local_speed                  # threads 1 and 2, batch 512 (~3 min)
    .venv/bin/python -m bench.local_speed --threads 1,2,4 --batches 8,512 --rounds 5

Each round streams one answer from the engine (``Llama.create_chat_completion(stream=True)``)
and one from the provider (``stream_chat``), alternating, from an empty KV cache. Decode speed
is (answer tokens - 1) / (time from the first token to the last); prompt time is the time to
the first token. Medians over rounds. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROMPT = "Write a very long story about a dragon and a knight."
SYSTEM = "You are a helpful assistant."


@dataclass(frozen=True, slots=True)
class Sample:
    tokens: int
    first: float  # seconds to the first token
    decode: float  # seconds from the first token to the last

    @property
    def tokens_per_second(self) -> float:
        return (self.tokens - 1) / self.decode if self.decode > 0 else 0.0


def engine_sample(llama: Any, max_tokens: int) -> Sample:
    llama.reset()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    started = time.perf_counter()
    first = last = started
    tokens = 0
    for chunk in llama.create_chat_completion(
        messages, temperature=0.0, max_tokens=max_tokens, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            last = time.perf_counter()
            if not tokens:
                first = last
            tokens += 1
    return Sample(tokens, first - started, last - first)


async def provider_sample(client: Any, max_tokens: int) -> Sample:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    started = time.perf_counter()
    first = last = started
    seen = False
    usage = None
    async for chunk in client.stream_chat(messages, max_tokens=max_tokens, temperature=0.0):
        if chunk.delta:
            last = time.perf_counter()
            if not seen:
                first, seen = last, True
        if chunk.usage is not None:
            usage = chunk.usage
    tokens = usage.completion_tokens if usage is not None else 0
    return Sample(tokens, first - started, last - first)


async def measure(n_threads: int, n_batch: int, rounds: int, max_tokens: int) -> dict[str, Any]:
    import llama_cpp

    from lexigram.ai.llm import ClientConfig, create_llm_client
    from lexigram.ai.llm.providers.local import LoadOptions, bundled_model_path

    extra = {"n_threads": n_threads, "n_batch": n_batch, "system_prompt": SYSTEM}
    config = ClientConfig(provider="local", temperature=0.0, max_tokens=max_tokens, extra=extra)
    options = LoadOptions.from_config(config)
    llama = llama_cpp.Llama(
        model_path=str(bundled_model_path()), verbose=False, **options.llama_kwargs()
    )
    engine: list[Sample] = []
    ours: list[Sample] = []
    async with create_llm_client(config) as client:
        await client.load()
        engine_sample(llama, 8)  # warm both up
        await provider_sample(client, 8)
        for round_ in range(rounds):
            sys.stderr.write(f"\r\033[Kthreads {n_threads} batch {n_batch}: round {round_ + 1}")
            sys.stderr.flush()
            if round_ % 2:  # alternate who goes first: drift on a shared machine hits both
                ours.append(await provider_sample(client, max_tokens))
            engine.append(engine_sample(llama, max_tokens))
            if not round_ % 2:
                ours.append(await provider_sample(client, max_tokens))
    llama.close()

    def med(samples: list[Sample], attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples)

    return {
        "n_threads": n_threads,
        "n_batch": n_batch,
        "tokens": engine[0].tokens,
        "tokens_ours": ours[0].tokens,
        "engine_tps": med(engine, "tokens_per_second"),
        "ours_tps": med(ours, "tokens_per_second"),
        "engine_first": med(engine, "first"),
        "ours_first": med(ours, "first"),
    }


def render(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "## Local model speed (streamed, greedy, bundled SmolLM2-135M-Instruct)",
        "",
        "| n_threads | n_batch | answer tokens | llama-cpp-python tok/s | lexigram tok/s "
        "| overhead | first token engine / ours (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        overhead = 1 - r["ours_tps"] / r["engine_tps"] if r["engine_tps"] else 0.0
        lines.append(
            f"| {r['n_threads']} | {r['n_batch']} | {r['tokens']} / {r['tokens_ours']} "
            f"| {r['engine_tps']:.1f} | {r['ours_tps']:.1f} | {overhead:+.1%} "
            f"| {r['engine_first'] * 1000:.0f} / {r['ours_first'] * 1000:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.local_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="1,2", help="n_threads values (default 1,2)")
    parser.add_argument("--batches", default="512", help="n_batch values (default 512)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args(argv)
    rows = [
        asyncio.run(measure(int(t), int(b), args.rounds, args.max_tokens))
        for t in args.threads.split(",")
        for b in args.batches.split(",")
    ]
    sys.stderr.write("\r\033[K")
    print(render(rows))


if __name__ == "__main__":
    main()
