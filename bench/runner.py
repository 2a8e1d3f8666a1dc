"""The benchmark run: start the fake server, measure every client round by round, report.

In-process figures (one event loop, the clients created once and warmed up) are measured in
rounds; within a round every figure is taken for every client before the next figure, and the
client order rotates from round to round, so slow drift on a shared machine (other processes,
thermal state) falls on all clients alike. Fresh-process figures run one interpreter per sample.
Each figure is the median over rounds; ratios compare with raw aiohttp+orjson on the same wire,
measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import probes
from bench.clients import ADAPTERS, Adapter, available_adapters
from bench.payloads import ANSWER_PIECES, ANSWER_TEXT, OPENAI_MODEL, PROMPT
from bench.report import BASELINE, render

__all__ = ["FULL", "QUICK", "Plan", "Results", "main", "run"]

#: Where reports go by default (ignored by git).
RESULTS = probes.ROOT / "bench" / "results"

#: The raw clients every ratio is computed against; the run stops if one of them fails.
BASELINES = frozenset({"aiohttp", "aiohttp-anthropic", "aiohttp-responses"})


@dataclass(frozen=True)
class Plan:
    """How much to measure.

    Request figures are time-boxed: a client keeps going until ``seconds`` have passed and it
    has made at least the minimum number of requests, so fast clients are measured over many
    requests and slow ones do not stretch the run.
    """

    rounds: int
    seconds: float  # time box per client and figure, per round
    sequential_min: int  # at least this many non-streamed requests, one at a time
    in_flight: tuple[int, ...]  # requests kept in flight
    waves_min: int  # at least this many times the in-flight count of requests
    streams: int  # streams per round, one at a time
    cache_hits: int  # cache hits per round
    fresh_rounds: int  # fresh interpreters per client for import and first answer
    open_streams: int  # streams held open at once for the memory figure
    memory_rounds: int
    chunk_interval_ms: float = 1.0
    latency_ms: float = 0.0
    #: Warm up at the widest concurrency (opens every pooled connection before round 1).
    warm_widest: bool = True


FULL = Plan(
    rounds=5,
    seconds=1.0,
    sequential_min=100,
    in_flight=(100, 1000),
    waves_min=2,
    streams=8,
    cache_hits=1000,
    fresh_rounds=5,
    open_streams=1000,
    memory_rounds=2,
)

QUICK = Plan(
    rounds=2,
    seconds=0.25,
    sequential_min=30,
    in_flight=(100, 1000),
    waves_min=1,
    streams=2,
    cache_hits=200,
    fresh_rounds=1,
    open_streams=300,
    memory_rounds=1,
    warm_widest=False,
)


@dataclass
class Results:
    """Samples per figure and client, plus what was skipped and why."""

    plan: Plan
    environment: dict[str, str] = field(default_factory=dict)
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    adapters: list[dict[str, str]] = field(default_factory=list)
    import_modules: dict[str, list[str]] = field(default_factory=dict)

    def add(self, figure: str, client: str, value: float) -> None:
        self.samples.setdefault(figure, {}).setdefault(client, []).append(value)

    def median(self, figure: str, client: str) -> float | None:
        values = self.samples.get(figure, {}).get(client)
        return statistics.median(values) if values else None

    def to_json(self) -> dict[str, Any]:
        medians = {
            figure: {client: statistics.median(v) for client, v in by_client.items() if v}
            for figure, by_client in self.samples.items()
        }
        return {
            "plan": asdict(self.plan),
            "environment": self.environment,
            "adapters": self.adapters,
            "medians": medians,
            "samples": self.samples,
            "import_modules": self.import_modules,
            "notes": self.notes,
        }


_STARTED = time.perf_counter()


def _log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:5.1f} s] {message}", file=sys.stderr, flush=True)


# -- the fake server and redis ---------------------------------------------------------------


@contextlib.contextmanager
def fake_server(plan: Plan) -> Iterator[str]:
    """The fake provider in its own process; yields its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.server",
            "--latency-ms",
            str(plan.latency_ms),
            "--chunk-interval-ms",
            str(plan.chunk_interval_ms),
        ],
        cwd=probes.ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("READY "):
            raise RuntimeError(f"the fake server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway ``redis-server`` on a free loopback port (``None`` when not installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- in-process figures ----------------------------------------------------------------------


def _check(text: str, who: str) -> None:
    if text != ANSWER_TEXT:
        raise RuntimeError(f"{who} returned a wrong answer: {text[:60]!r}")


async def measure_sequential(adapter: Adapter, seconds: float, minimum: int) -> tuple[float, float]:
    """Non-streamed requests one at a time: (CPU ms per request, wall ms per request)."""
    gc.collect()
    count = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    deadline = wall0 + seconds
    while count < minimum or time.perf_counter() < deadline:
        _check(await adapter.complete(), adapter.id)
        count += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / count * 1000, wall / count * 1000


async def measure_in_flight(
    adapter: Adapter, concurrency: int, seconds: float, minimum: int
) -> tuple[float, float]:
    """Requests kept ``concurrency`` in flight until ``seconds`` passed and ``minimum`` were
    started (those in flight then still finish and count): (requests/s, CPU ms per request)."""
    started = 0
    deadline = 0.0

    async def worker() -> None:
        nonlocal started
        while started < minimum or time.perf_counter() < deadline:
            started += 1
            _check(await adapter.complete(), adapter.id)

    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    deadline = wall0 + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return started / wall, cpu / started * 1000


async def measure_streams(adapter: Adapter, count: int) -> tuple[float, float]:
    """Streams one at a time: (CPU µs per content chunk, median ms to the first chunk)."""
    first_times: list[float] = []
    gc.collect()
    cpu0 = time.process_time()
    for _ in range(count):
        first: list[float] = []
        started = time.perf_counter()
        text = await adapter.stream_text(functools.partial(_stamp, first))
        _check(text, adapter.id)
        first_times.append((first[0] - started) * 1000)
    cpu = time.process_time() - cpu0
    return cpu / (count * len(ANSWER_PIECES)) * 1e6, statistics.median(first_times)


async def measure_cache_hits(
    complete: Callable[[], Awaitable[str]], count: int
) -> tuple[float, float]:
    """Cache hits one at a time: (wall µs per hit, CPU µs per hit)."""
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(count):
        _check(await complete(), "cache")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return wall / count * 1e6, cpu / count * 1e6


@contextlib.contextmanager
def _tolerated(adapter: Adapter, what: str, results: Results) -> Iterator[None]:
    """A third-party client failing one measurement (an SDK's 5 s connect timeout on a loaded
    machine) loses that figure, noted in the report, not the run; our own client's failure
    is a bug and ends the run."""
    try:
        yield
    except Exception as exc:
        if adapter.id.startswith("lexigram"):
            raise
        note = (
            f"{adapter.id}: {what} failed ({type(exc).__name__}: {str(exc)[:80]}); figure left out."
        )
        results.notes.append(note)
        _log(note)


def _stamp(into: list[float]) -> None:
    into.append(time.perf_counter())


def _rotated(items: list[Adapter], by: int) -> list[Adapter]:
    if not items:
        return items
    by %= len(items)
    return items[by:] + items[:by]


async def _warm_up(adapter: Adapter, plan: Plan) -> None:
    await adapter.start()
    for _ in range(20):
        _check(await adapter.complete(), adapter.id)
    _check(await adapter.stream_text(lambda: None), adapter.id)
    widest = max(plan.in_flight) if plan.warm_widest else min(plan.in_flight)
    await measure_in_flight(adapter, widest, 0.0, widest)


async def _in_process(
    plan: Plan, base_url: str, adapter_classes: list[type[Adapter]], results: Results
) -> list[type[Adapter]]:
    """Measure the in-process figures; the adapters that worked (one that fails to warm up is
    left out with a note, unless it is a baseline)."""
    adapters: list[Adapter] = []
    _log("warming up: every client makes a few calls and fills its pool")
    for cls in adapter_classes:
        adapter = cls(base_url)
        try:
            await _warm_up(adapter, plan)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await adapter.close()
            if cls.id in BASELINES:
                raise
            results.notes.append(
                f"{cls.id} left out: it failed while warming up ({type(exc).__name__}: {exc})."
            )
            continue
        adapters.append(adapter)
    try:
        # Every client lives in this one process, so the garbage collector's full passes walk
        # all of their objects (the SDKs import large pydantic schemas). Freezing what exists
        # after warm-up keeps one client's heap out of another's figures; what each client
        # allocates while measured is still collected as usual.
        gc.collect()
        gc.freeze()
        for round_no in range(plan.rounds):
            order = _rotated(adapters, round_no)
            _log(f"round {round_no + 1}/{plan.rounds}: {', '.join(a.id for a in order)}")
            for adapter in order:
                with _tolerated(adapter, "sequential requests", results):
                    cpu, wall = await measure_sequential(adapter, plan.seconds, plan.sequential_min)
                    results.add("seq_cpu_ms", adapter.id, cpu)
                    results.add("seq_wall_ms", adapter.id, wall)
            for concurrency in plan.in_flight:
                for adapter in order:
                    with _tolerated(adapter, f"{concurrency} in flight", results):
                        rps, cpu = await measure_in_flight(
                            adapter, concurrency, plan.seconds, concurrency * plan.waves_min
                        )
                        results.add(f"rps_{concurrency}", adapter.id, rps)
                        results.add(f"cpu_{concurrency}_ms", adapter.id, cpu)
            for adapter in order:
                with _tolerated(adapter, "streams", results):
                    per_chunk, first = await measure_streams(adapter, plan.streams)
                    results.add("chunk_cpu_us", adapter.id, per_chunk)
                    results.add("first_chunk_ms", adapter.id, first)
    finally:
        gc.unfreeze()
        for adapter in adapters:
            await adapter.close()
    return [type(adapter) for adapter in adapters]


async def _cache_figures(plan: Plan, base_url: str, results: Results) -> None:
    """Cache-hit latency of our client, with the in-memory cache and with Redis."""
    try:
        from pydantic import SecretStr

        from lexigram.ai.llm import ClientConfig, create_llm_client
        from lexigram.ai.llm.caching import LLMCache
    except ImportError as exc:
        results.notes.append(f"Cache hits not measured: lexigram.ai.llm.caching ({exc}).")
        return

    def config(**extra: Any) -> Any:
        return ClientConfig(
            provider="openai",
            model=OPENAI_MODEL,
            api_key=SecretStr("sk-bench-not-a-real-key"),
            api_base=base_url + "/v1",
            max_tokens=1024,
            **extra,
        )

    async def measure(llm: Any, figure: str) -> None:
        async def hit() -> str:
            result = await llm.complete(PROMPT)
            content: str = result.unwrap().content
            return content

        _check(await hit(), "cache warm-up")  # the miss that fills the cache
        hits_before = llm.cache.stats.hits
        for _ in range(plan.rounds):
            wall, cpu = await measure_cache_hits(hit, plan.cache_hits)
            results.add(f"{figure}_wall_us", "lexigram", wall)
            results.add(f"{figure}_cpu_us", "lexigram", cpu)
        served = llm.cache.stats.hits - hits_before
        if served != plan.rounds * plan.cache_hits:
            raise RuntimeError(f"{figure}: {served} hits for {plan.rounds * plan.cache_hits} calls")

    _log("cache hits: in memory (ClientConfig(enable_cache=True))")
    llm = create_llm_client(config(enable_cache=True))
    try:
        await measure(llm, "cache_memory")
    finally:
        await llm.close()

    try:
        from lexigram.cache import RedisCacheBackend
    except ImportError as exc:
        results.notes.append(f"Redis cache hits not measured: lexigram.cache ({exc}).")
        return
    with redis_server() as redis_url:
        if redis_url is None:
            results.notes.append(
                "Redis cache hits not measured: redis-server is not installed "
                "(apt-get install -y redis-server)."
            )
            return
        _log("cache hits: Redis (LLMCache(RedisCacheBackend(...)))")
        backend = RedisCacheBackend(redis_url)
        llm = create_llm_client(config(), cache=LLMCache(backend))
        try:
            await measure(llm, "cache_redis")
        finally:
            await llm.close()
            for name in ("aclose", "close"):
                close = getattr(backend, name, None)
                if close is not None:
                    outcome = close()
                    if asyncio.iscoroutine(outcome):
                        await outcome
                    break


# -- fresh-process figures -------------------------------------------------------------------


def _fresh_process(
    plan: Plan, base_url: str, adapter_classes: list[type[Adapter]], results: Results
) -> None:
    ids = [cls.id for cls in adapter_classes]
    failed: set[str] = set()

    def attempt(adapter_id: str, what: str, probe: Callable[[], Any]) -> Any:
        """Run one probe; a failing client is dropped from the rest with a note."""
        if adapter_id in failed:
            return None
        try:
            return probe()
        except Exception as exc:
            if adapter_id in BASELINES:
                raise
            failed.add(adapter_id)
            results.notes.append(f"{adapter_id}: the {what} probe failed ({exc}).")
            return None

    _log("fresh interpreters: one unmeasured run each, to fill the bytecode cache")
    probes.probe_interpreter()
    for adapter_id in ids:
        if adapter_id in probes.IMPORTS:
            attempt(adapter_id, "import", functools.partial(probes.probe_import, adapter_id))
        attempt(
            adapter_id,
            "first-answer",
            functools.partial(probes.probe_first_answer, adapter_id, base_url),
        )
    for round_no in range(plan.fresh_rounds):
        _log(f"fresh interpreters {round_no + 1}/{plan.fresh_rounds}: import, first answer")
        seconds, rss = probes.probe_interpreter()
        results.add("python_start_s", "python", seconds)
        results.add("python_rss_mb", "python", rss)
        for adapter_id in ids[round_no % len(ids) :] + ids[: round_no % len(ids)]:
            if adapter_id in probes.IMPORTS:
                imported = attempt(
                    adapter_id, "import", functools.partial(probes.probe_import, adapter_id)
                )
                if imported is not None:
                    seconds, rss, heavy = imported
                    results.add("import_ms", adapter_id, seconds * 1000)
                    results.add("import_rss_mb", adapter_id, rss)
                    results.import_modules[adapter_id] = heavy
            answered = attempt(
                adapter_id,
                "first-answer",
                functools.partial(probes.probe_first_answer, adapter_id, base_url),
            )
            if answered is not None:
                results.add("first_answer_s", adapter_id, answered)
    for round_no in range(plan.memory_rounds):
        for adapter_id in ids:
            _log(f"memory: {plan.open_streams} open streams, {adapter_id} ({round_no + 1})")
            per_stream = attempt(
                adapter_id,
                "memory",
                functools.partial(probes.probe_memory, adapter_id, base_url, plan.open_streams),
            )
            if per_stream is not None:
                results.add("stream_kb", adapter_id, per_stream / 1024)


# -- the run ---------------------------------------------------------------------------------


def _environment(plan: Plan) -> dict[str, str]:
    env = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "server": (
            f"separate process on loopback; latency {plan.latency_ms:g} ms, "
            f"stream chunk interval {plan.chunk_interval_ms:g} ms"
        ),
    }
    for dist in ("aiohttp", "orjson", "openai", "anthropic", "litellm", "httpx", "httpx2"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            env[dist] = metadata.version(dist)
    return env


def run(plan: Plan, wanted: set[str] | None = None, *, fresh: bool = True) -> Results:
    """Measure everything the plan asks for and return the samples."""
    for name, value in probes.OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    adapter_classes, skipped = available_adapters(wanted)
    results = Results(plan)
    results.environment = _environment(plan)
    results.adapters = [
        {"id": cls.id, "title": cls.title, "wire": cls.wire} for cls in adapter_classes
    ]
    for adapter_id, reason in skipped.items():
        results.notes.append(f"{adapter_id} skipped: {reason}.")
    started = time.perf_counter()
    with fake_server(plan) as base_url:
        adapter_classes = asyncio.run(_in_process(plan, base_url, adapter_classes, results))
        results.adapters = [
            a for a in results.adapters if a["id"] in {c.id for c in adapter_classes}
        ]
        if wanted is None or "lexigram" in wanted:
            asyncio.run(_cache_figures(plan, base_url, results))
        if fresh:
            _fresh_process(plan, base_url, adapter_classes, results)
    results.environment["load_average_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results.environment["duration"] = f"{time.perf_counter() - started:.0f} s"
    return results


def main(argv: list[str] | None = None) -> None:
    """``python -m bench [--quick] [--rounds N] [--clients a,b] [--json F] [--output F]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Client overhead of lexigram-ai-llm against raw aiohttp and the official "
        "SDKs, on a fake provider in its own process. Prints a markdown report.",
    )
    parser.add_argument("--quick", action="store_true", help="smoke mode for CI (under ~60 s)")
    parser.add_argument("--rounds", type=int, help="rounds for in-process figures")
    parser.add_argument(
        "--clients",
        help="comma-separated adapter ids (default: every one installed): lexigram, aiohttp, "
        "openai-sdk, litellm, lexigram-anthropic, aiohttp-anthropic, anthropic-sdk, "
        "lexigram-responses, aiohttp-responses, openai-sdk-responses",
    )
    parser.add_argument("--latency-ms", type=float, help="server delay before each answer")
    parser.add_argument(
        "--chunk-interval-ms", type=float, help="server delay between stream chunks (default 1)"
    )
    parser.add_argument("--no-fresh", action="store_true", help="skip fresh-process figures")
    parser.add_argument(
        "--json",
        type=Path,
        help="where to write samples and medians as JSON (default: bench/results/)",
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the markdown report (default: bench/results/)"
    )
    args = parser.parse_args(argv)

    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = replace(plan, rounds=args.rounds, fresh_rounds=args.rounds)
    if args.latency_ms is not None:
        plan = replace(plan, latency_ms=args.latency_ms)
    if args.chunk_interval_ms is not None:
        plan = replace(plan, chunk_interval_ms=args.chunk_interval_ms)
    wanted = {c.strip() for c in args.clients.split(",")} if args.clients else None
    if wanted is not None:
        unknown = wanted - {cls.id for cls in ADAPTERS}
        if unknown:
            parser.error(f"unknown client(s): {', '.join(sorted(unknown))}")
        # Every ratio needs the raw baseline of its wire.
        wanted |= {BASELINE[cls.wire] for cls in ADAPTERS if cls.id in wanted}

    results = run(plan, wanted, fresh=not args.no_fresh)
    report = render(results)
    print(report)
    suffix = "-quick" if args.quick else ""
    output = args.output or RESULTS / f"report{suffix}.md"
    json_path = args.json or RESULTS / f"results{suffix}.json"
    for path in (output, json_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    json_path.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    _log(f"written: {output}, {json_path}")
