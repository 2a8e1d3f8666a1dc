"""What middleware and OpenTelemetry cost per request.

    .venv/bin/python -m bench.telemetry [--rounds N] [--seconds S]

Against the bench's fake provider (its own process; its CPU never counts), each scenario runs
in a fresh interpreter (an OTel global provider cannot be unset), alternating, ``--rounds``
times: client CPU per non-streamed request (one at a time) and per streamed chunk.

Scenarios: ``aiohttp`` (the raw floor), ``lexigram`` (no middleware, opentelemetry not
imported), ``otel-imported`` (opentelemetry.trace/metrics imported, no SDK provider set: what
an app with the API installed but unconfigured pays), ``noop-middleware`` (one user
middleware with a trivial ``before_request``), ``otel-sdk`` (a real SDK tracer provider with a
BatchSpanProcessor to an exporter that drops spans, and an SDK meter provider: the full cost
of spans and metrics). Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
from dataclasses import replace
from typing import Any

from bench.runner import QUICK, fake_server, measure_sequential, measure_streams

SCENARIOS = ("aiohttp", "lexigram", "otel-imported", "noop-middleware", "otel-sdk")


def _setup(scenario: str) -> list[Any]:
    """Global set-up for ``scenario``; the middleware list for the client."""
    if scenario == "otel-imported":
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    if scenario == "otel-sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    if scenario == "noop-middleware":
        from lexigram.ai.llm import Middleware

        class Noop(Middleware):
            async def before_request(self, call: Any, request: Any) -> None:
                return None

        return [Noop()]
    return []


async def _one(scenario: str, base_url: str, seconds: float) -> dict[str, float]:
    from bench.clients import Lexigram, RawAiohttp

    middleware = _setup(scenario)
    adapter: Any = RawAiohttp(base_url) if scenario == "aiohttp" else Lexigram(base_url)
    await adapter.start()
    if middleware:
        from lexigram.ai.llm.middleware import as_chain

        adapter.llm._middleware = as_chain(middleware)
        adapter.llm._always_observe = True
    try:
        for _ in range(20):
            await adapter.complete()
        cpu_ms, _ = await measure_sequential(adapter, seconds, 200)
        chunk_us, _ = await measure_streams(adapter, 20)
    finally:
        await adapter.close()
    return {"cpu_ms_per_request": cpu_ms, "cpu_us_per_chunk": chunk_us}


def _child(scenario: str, base_url: str, seconds: float) -> None:
    print(json.dumps(asyncio.run(_one(scenario, base_url, seconds))))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], args.seconds)
        return
    samples: dict[str, dict[str, list[float]]] = {s: {} for s in SCENARIOS}
    with fake_server(replace(QUICK)) as base_url:
        for round_ in range(args.rounds):
            order = SCENARIOS[round_ % len(SCENARIOS) :] + SCENARIOS[: round_ % len(SCENARIOS)]
            for scenario in order:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.telemetry", "--seconds", str(args.seconds),
                     "--child", scenario, base_url],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                for key, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
                    samples[scenario].setdefault(key, []).append(value)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    floor = statistics.median(samples["aiohttp"]["cpu_ms_per_request"])
    base = statistics.median(samples["lexigram"]["cpu_ms_per_request"])
    print("| scenario | CPU ms / request | vs aiohttp | vs lexigram | CPU µs / chunk |")
    print("|---|---|---|---|---|")
    for scenario in SCENARIOS:
        cpu = statistics.median(samples[scenario]["cpu_ms_per_request"])
        chunk = statistics.median(samples[scenario]["cpu_us_per_chunk"])
        print(
            f"| {scenario} | {cpu:.3f} | {cpu / floor:.2f}x | {cpu - base:+.3f} ms | {chunk:.1f} |"
        )


if __name__ == "__main__":
    main()
