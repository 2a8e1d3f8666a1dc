"""The markdown report: one table per wire family, cache hits, and the budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.runner import Results

__all__ = ["BASELINE", "BUDGETS", "render"]

#: The raw baseline each wire is compared with.
BASELINE = {"openai": "aiohttp", "anthropic": "aiohttp-anthropic", "responses": "aiohttp-responses"}

#: Our client on each wire.
OURS = {"openai": "lexigram", "anthropic": "lexigram-anthropic", "responses": "lexigram-responses"}


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool = False
    #: Library-level figures (import) are measured once per library, not per wire.
    per_library: bool = False


def _figures(results: Results) -> list[Figure]:
    plan = results.plan
    figures = [
        Figure("seq_cpu_ms", "CPU per request, sequential", "ms"),
        Figure("seq_wall_ms", "wall time per request, sequential", "ms"),
    ]
    for concurrency in plan.in_flight:
        figures += [
            Figure(f"rps_{concurrency}", f"throughput, {concurrency:,} in flight", "req/s", True),
            Figure(f"cpu_{concurrency}_ms", f"CPU per request, {concurrency:,} in flight", "ms"),
        ]
    figures += [
        Figure("chunk_cpu_us", "CPU per stream chunk", "µs"),
        Figure("first_chunk_ms", "time to first chunk (warm pool)", "ms"),
        Figure("import_ms", "import time (fresh interpreter)", "ms", per_library=True),
        Figure("import_rss_mb", "resident memory after import", "MB", per_library=True),
        Figure("first_answer_s", "time to first answer, fresh process", "s"),
        Figure("stream_kb", f"memory per open stream ({plan.open_streams:,} open)", "KB"),
    ]
    return figures


def _library(adapter_id: str) -> str:
    return {
        "lexigram-anthropic": "lexigram",
        "aiohttp-anthropic": "aiohttp",
        "lexigram-responses": "lexigram",
        "aiohttp-responses": "aiohttp",
        "openai-sdk-responses": "openai-sdk",
    }.get(adapter_id, adapter_id)


def _number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(value: float, base: float | None) -> str:
    if base is None or base == 0:
        return ""
    return f" ({value / base:.2f}×)"


def _value(results: Results, figure: Figure, adapter_id: str) -> float | None:
    who = _library(adapter_id) if figure.per_library else adapter_id
    return results.median(figure.key, who)


def _wire_table(results: Results, wire: str) -> list[str]:
    adapters = [a for a in results.adapters if a["wire"] == wire]
    baseline = BASELINE[wire]
    if all(a["id"] == baseline for a in adapters):
        return []
    lines = [
        "| figure | " + " | ".join(a["title"] for a in adapters) + " |",
        "|---|" + "---:|" * len(adapters),
    ]
    for figure in _figures(results):
        base = (
            results.median(figure.key, _library(baseline))
            if figure.per_library
            else results.median(figure.key, baseline)
        )
        cells = []
        for adapter in adapters:
            value = _value(results, figure, adapter["id"])
            cells.append("—" if value is None else _number(value) + _ratio(value, base))
        if all(c == "—" for c in cells):
            continue
        lines.append(f"| {figure.label} ({figure.unit}) | " + " | ".join(cells) + " |")
    return lines


@dataclass(frozen=True)
class Budget:
    label: str
    limit: str
    figure: str
    wire: str | None  # ratio to this wire's baseline, or None for an absolute value
    bound: float
    higher_is_better: bool = False
    unit: str = ""


BUDGETS = (
    Budget("non-streamed CPU per request", "≤ 1.2×", "seq_cpu_ms", "openai", 1.2),
    Budget("throughput at 100 in flight", "≥ 0.8×", "rps_100", "openai", 0.8, True),
    Budget("CPU per stream chunk", "≤ 1.1×", "chunk_cpu_us", "openai", 1.1),
    Budget("non-streamed CPU per request (Anthropic)", "≤ 1.2×", "seq_cpu_ms", "anthropic", 1.2),
    Budget("throughput at 100 in flight (Anthropic)", "≥ 0.8×", "rps_100", "anthropic", 0.8, True),
    Budget("CPU per stream chunk (Anthropic)", "≤ 1.1×", "chunk_cpu_us", "anthropic", 1.1),
    Budget("non-streamed CPU per request (Responses)", "≤ 1.2×", "seq_cpu_ms", "responses", 1.2),
    Budget("throughput at 100 in flight (Responses)", "≥ 0.8×", "rps_100", "responses", 0.8, True),
    Budget("CPU per stream chunk (Responses)", "≤ 1.1×", "chunk_cpu_us", "responses", 1.1),
    Budget("`import lexigram.ai.llm` time", "≤ 100 ms", "import_ms", None, 100, unit="ms"),
    Budget(
        "`import lexigram.ai.llm` resident memory", "≤ 45 MB", "import_rss_mb", None, 45, unit="MB"
    ),
    Budget("time to first answer, fresh process", "≤ 0.5 s", "first_answer_s", None, 0.5, unit="s"),
    Budget("memory per idle open stream", "≤ 50 KB", "stream_kb", None, 50, unit="KB"),
)


def _budget_rows(results: Results) -> list[str]:
    lines = ["| budget | limit | measured | verdict |", "|---|---|---:|---|"]
    for budget in BUDGETS:
        ours = OURS[budget.wire] if budget.wire is not None else "lexigram"
        value = results.median(budget.figure, ours)
        if value is None:
            continue
        if budget.wire is not None:
            base = results.median(budget.figure, BASELINE[budget.wire])
            if base is None:
                continue
            measured = value / base
            shown = f"{measured:.2f}×"
        else:
            measured = value
            shown = f"{_number(value)} {budget.unit}"
        holds = measured >= budget.bound if budget.higher_is_better else measured <= budget.bound
        lines.append(
            f"| {budget.label} | {budget.limit} | {shown} | {'holds' if holds else '**missed**'} |"
        )
    heavy = results.import_modules.get("lexigram")
    if heavy is not None:
        verdict = "holds" if not heavy else "**missed**"
        lines.append(
            "| no transport or extras loaded by `import lexigram.ai.llm` | none | "
            f"{', '.join(heavy) or 'none'} | {verdict} |"
        )
    return lines


def _cache_rows(results: Results) -> list[str]:
    base = results.median("seq_wall_ms", "aiohttp")
    rows = []
    for key, label in (("cache_memory", "in memory"), ("cache_redis", "Redis")):
        wall = results.median(f"{key}_wall_us", "lexigram")
        cpu = results.median(f"{key}_cpu_us", "lexigram")
        if wall is None or cpu is None:
            continue
        versus = f"{wall / 1000 / base:.2f}×" if base else "—"
        rows.append(f"| {label} | {_number(wall)} | {_number(cpu)} | {versus} |")
    if not rows:
        return []
    return [
        "| cache | wall time per hit (µs) | CPU per hit (µs) | vs one raw aiohttp request |",
        "|---|---:|---:|---:|",
        *rows,
    ]


def render(results: Results) -> str:
    """The whole report as markdown."""
    plan = results.plan
    env = results.environment
    out = ["# lexigram-ai-llm benchmark", ""]
    versions = ", ".join(
        f"{name} {env[name]}"
        for name in ("aiohttp", "orjson", "openai", "anthropic", "litellm", "httpx", "httpx2")
        if name in env
    )
    out += [
        f"Python {env.get('python')} on {env.get('machine')}; load average "
        f"{env.get('load_average')} before, {env.get('load_average_after')} after; "
        f"run took {env.get('duration')}. {versions}.",
        f"Fake provider: {env.get('server')}.",
        f"Medians of {plan.rounds} rounds (fresh-process figures: {plan.fresh_rounds}; memory: "
        f"{plan.memory_rounds}). Per round and client: requests for {plan.seconds:g} s "
        f"(at least {plan.sequential_min} one at a time; at least "
        f"{plan.waves_min}× the in-flight count at "
        + " and ".join(f"{c:,}" for c in plan.in_flight)
        + f" in flight), {plan.streams} streams of {_chunks()} chunks. "
        "In parentheses: the ratio to raw aiohttp+orjson on the same wire, same run "
        "(for throughput higher is better, for everything else lower is better).",
        "",
    ]
    for wire, title in (
        ("openai", "OpenAI Chat Completions wire"),
        ("anthropic", "Anthropic Messages wire"),
        ("responses", "OpenAI Responses wire"),
    ):
        table = _wire_table(results, wire)
        if table:
            out += [f"## {title}", "", *table, ""]
    cache = _cache_rows(results)
    if cache:
        out += ["## Cache hits (lexigram, OpenAI wire)", "", *cache, ""]
    python_start = results.median("python_start_s", "python")
    python_rss = results.median("python_rss_mb", "python")
    if python_start is not None and python_rss is not None:
        out += [
            f"A bare interpreter (`python -c pass`) starts in {python_start * 1000:.0f} ms "
            f"with {python_rss:.1f} MB resident; fresh-process figures include it.",
            "",
        ]
    budgets = _budget_rows(results)
    if len(budgets) > 2:
        out += ["## Budgets (lexigram)", "", *budgets, ""]
    if results.notes:
        out += ["## Notes", "", *(f"- {note}" for note in results.notes), ""]
    return "\n".join(out).rstrip() + "\n"


def _chunks() -> int:
    from bench.payloads import ANSWER_PIECES

    return len(ANSWER_PIECES)
