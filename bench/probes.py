"""Figures that need a fresh interpreter: import cost, time to first answer, memory per stream.

Each probe is a separate Python process so that nothing the runner has already imported or
allocated leaks into it. The import and first-answer probes are small scripts handed to
``python -c`` (so the probe itself imports nothing else); the memory probe runs
``python -m bench.probes memory ...`` and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = [
    "IMPORTS",
    "first_answer_script",
    "probe_first_answer",
    "probe_import",
    "probe_interpreter",
    "probe_memory",
]

#: Repository root: probes run from here so that ``bench`` is importable.
ROOT = Path(__file__).resolve().parent.parent

#: Where probe interpreters keep compiled bytecode. An installed package has its ``.pyc`` files
#: (pip writes them at install time), but this workspace is installed in editable mode and the
#: environment may set ``PYTHONDONTWRITEBYTECODE``, which would make every fresh interpreter
#: compile every module from source and measure the compiler instead of the import. Probes
#: therefore write and reuse bytecode in a cache of their own, outside the work tree, and each
#: probe runs once unmeasured first.
PYCACHE = Path(tempfile.gettempdir()) / "lexigram-bench-pycache"


#: Set for every client process: LiteLLM otherwise fetches its price list from the internet
#: when imported (and, offline, waits for the fetch to fail).
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def probe_env() -> dict[str, str]:
    """The environment of a probe interpreter: bytecode cached, ``bench`` importable."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name, value in OFFLINE_ENV.items():
        env.setdefault(name, value)
    return env


#: What each library costs to import: adapter id -> import statement.
IMPORTS: dict[str, str] = {
    "lexigram": "import lexigram.ai.llm",
    "aiohttp": "import aiohttp, orjson",
    "openai-sdk": "import openai",
    "anthropic-sdk": "import anthropic",
    "litellm": "import litellm",
}

#: Top-level modules that ``import lexigram.ai.llm`` must not load (transport, extras, SDKs).
HEAVY_MODULES = (
    "aiohttp",
    "pydantic",
    "pydantic_settings",
    "orjson",
    "yaml",
    "redis",
    "tiktoken",
    "tokenizers",
    "botocore",
    "google",
    "llama_cpp",
    "jsonschema",
    "httpx",
    "openai",
    "anthropic",
)

_IMPORT_SCRIPT = """\
import time
_t0 = time.perf_counter()
{statement}
_t1 = time.perf_counter()
import sys
with open("/proc/self/status") as _f:
    _rss = next(int(line.split()[1]) for line in _f if line.startswith("VmRSS:"))
_heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(_t1 - _t0, _rss, ",".join(_heavy))
"""

_INTERPRETER_SCRIPT = """\
with open("/proc/self/status") as _f:
    print(next(int(line.split()[1]) for line in _f if line.startswith("VmRSS:")))
"""


def _python(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else probe_env(),
    )


def _finish(process: subprocess.Popen[bytes], what: str) -> bytes:
    out, err = process.communicate(timeout=300)
    if process.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{what} failed (exit {process.returncode}): " + " | ".join(tail))
    return out


def probe_interpreter() -> tuple[float, float]:
    """``python -c`` with nothing imported: (wall seconds to exit, resident MB)."""
    started = time.perf_counter()
    out = _finish(_python(["-c", _INTERPRETER_SCRIPT]), "interpreter probe")
    return time.perf_counter() - started, int(out) / 1024


def probe_import(adapter_id: str) -> tuple[float, float, list[str]]:
    """Import the library in a fresh interpreter: (seconds, resident MB after, heavy modules
    loaded)."""
    script = _IMPORT_SCRIPT.format(statement=IMPORTS[adapter_id], heavy=HEAVY_MODULES)
    out = _finish(_python(["-c", script]), f"import probe for {adapter_id}")
    fields = out.decode().split()
    heavy = fields[2].split(",") if len(fields) > 2 else []
    return float(fields[0]), int(fields[1]) / 1024, heavy


def first_answer_script(adapter_id: str, base_url: str) -> str:
    """The shortest program a user would write to get one answer with this client."""
    from bench.payloads import ANTHROPIC_MODEL, OPENAI_MODEL, PROMPT

    anthropic_wire = adapter_id in ("lexigram-anthropic", "aiohttp-anthropic", "anthropic-sdk")
    model = ANTHROPIC_MODEL if anthropic_wire else OPENAI_MODEL

    key = "sk-bench-not-a-real-key"
    system, user = PROMPT[0]["content"], PROMPT[1:]
    if adapter_id in ("lexigram", "lexigram-anthropic"):
        provider, api_base = (
            ("openai", base_url + "/v1") if adapter_id == "lexigram" else ("anthropic", base_url)
        )
        return f"""\
import asyncio
from lexigram.ai.llm import ClientConfig, create_llm_client

async def main():
    llm = create_llm_client(ClientConfig(
        provider={provider!r}, model={model!r}, api_key={key!r}, api_base={api_base!r},
        max_tokens=1024))
    result = await llm.complete({PROMPT!r})
    print(result.unwrap().content, flush=True)
    await llm.close()

asyncio.run(main())
"""
    if adapter_id == "aiohttp":
        return f"""\
import asyncio
import aiohttp, orjson

async def main():
    async with aiohttp.ClientSession() as session:
        async with session.post(
            {base_url + "/v1/chat/completions"!r},
            data=orjson.dumps({{"model": {model!r}, "messages": {PROMPT!r}, "max_tokens": 1024}}),
            headers={{"Authorization": "Bearer {key}", "Content-Type": "application/json"}},
        ) as response:
            data = orjson.loads(await response.read())
        print(data["choices"][0]["message"]["content"], flush=True)

asyncio.run(main())
"""
    if adapter_id == "aiohttp-anthropic":
        return f"""\
import asyncio
import aiohttp, orjson

async def main():
    async with aiohttp.ClientSession() as session:
        async with session.post(
            {base_url + "/v1/messages"!r},
            data=orjson.dumps({{"model": {model!r}, "system": {system!r},
                               "messages": {user!r}, "max_tokens": 1024}}),
            headers={{"x-api-key": "{key}", "anthropic-version": "2023-06-01",
                     "Content-Type": "application/json"}},
        ) as response:
            data = orjson.loads(await response.read())
        print(data["content"][0]["text"], flush=True)

asyncio.run(main())
"""
    if adapter_id == "lexigram-responses":
        return f"""\
import asyncio
from lexigram.ai.llm import ClientConfig, create_llm_client

async def main():
    llm = create_llm_client(ClientConfig(
        provider="openai_responses", model={model!r}, api_key={key!r},
        api_base={base_url + "/v1"!r}, max_tokens=1024))
    result = await llm.complete({PROMPT!r})
    print(result.unwrap().content, flush=True)
    await llm.close()

asyncio.run(main())
"""
    if adapter_id == "aiohttp-responses":
        return f"""\
import asyncio
import aiohttp, orjson

async def main():
    async with aiohttp.ClientSession() as session:
        async with session.post(
            {base_url + "/v1/responses"!r},
            data=orjson.dumps({{"model": {model!r}, "instructions": {system!r},
                               "input": {user!r}, "max_output_tokens": 1024, "store": False}}),
            headers={{"Authorization": "Bearer {key}", "Content-Type": "application/json"}},
        ) as response:
            data = orjson.loads(await response.read())
        print(data["output"][0]["content"][0]["text"], flush=True)

asyncio.run(main())
"""
    if adapter_id == "openai-sdk-responses":
        return f"""\
import asyncio
import openai

async def main():
    client = openai.AsyncOpenAI(api_key={key!r}, base_url={base_url + "/v1"!r})
    response = await client.responses.create(
        model={model!r}, instructions={system!r}, input={user!r}, max_output_tokens=1024,
        store=False)
    print(response.output_text, flush=True)
    await client.close()

asyncio.run(main())
"""
    if adapter_id == "openai-sdk":
        return f"""\
import asyncio
import openai

async def main():
    client = openai.AsyncOpenAI(api_key={key!r}, base_url={base_url + "/v1"!r})
    response = await client.chat.completions.create(
        model={model!r}, messages={PROMPT!r}, max_tokens=1024)
    print(response.choices[0].message.content, flush=True)
    await client.close()

asyncio.run(main())
"""
    if adapter_id == "anthropic-sdk":
        return f"""\
import asyncio
import anthropic

async def main():
    client = anthropic.AsyncAnthropic(api_key={key!r}, base_url={base_url!r})
    message = await client.messages.create(
        model={model!r}, system={system!r}, messages={user!r}, max_tokens=1024)
    print(message.content[0].text, flush=True)
    await client.close()

asyncio.run(main())
"""
    if adapter_id == "litellm":
        return f"""\
import asyncio
import litellm

async def main():
    response = await litellm.acompletion(
        model="openai/{model}", messages={PROMPT!r}, api_base={base_url + "/v1"!r},
        api_key={key!r}, max_tokens=1024)
    print(response.choices[0].message.content, flush=True)

asyncio.run(main())
"""
    raise ValueError(f"no first-answer script for {adapter_id!r}")


def probe_first_answer(adapter_id: str, base_url: str) -> float:
    """Seconds from starting a fresh interpreter to the answer printed by it."""
    from bench.payloads import ANSWER_TEXT

    script = first_answer_script(adapter_id, base_url)
    started = time.perf_counter()
    process = _python(["-c", script])
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    _finish(process, f"first-answer probe for {adapter_id}")
    if line.decode().rstrip("\n") != ANSWER_TEXT:
        raise RuntimeError(f"{adapter_id} printed a wrong answer: {line[:80]!r}")
    return elapsed


def probe_memory(adapter_id: str, base_url: str, streams: int) -> float:
    """Resident bytes per open, idle stream, with ``streams`` of them open at once."""
    process = _python(
        ["-m", "bench.probes", "memory", adapter_id, base_url, str(streams)],
        env=probe_env(),
    )
    out = _finish(process, f"memory probe for {adapter_id}")
    return float(out.decode().strip().splitlines()[-1])


# -- in the probe process --------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _settle_background_loads() -> None:
    """Our client loads genai-prices' data on a background thread the first time it meets a
    model whose price no earlier process saved (``pricing.warm_prices``; the bench's hold
    model is one, and a new virtualenv starts with nothing saved): wait for that load, so the
    figure counts the streams and not a one-off import of ~10 MB landing in the middle
    (measured with nothing saved, 300 streams: -150 KB here and 60 KB in a fresh CI clone
    per stream without waiting, depending on when the import lands; 16.6 KB waiting)."""
    pricing = sys.modules.get("lexigram.ai.llm.pricing")
    thread = getattr(pricing, "_warming", None) if pricing is not None else None
    if isinstance(thread, threading.Thread):
        thread.join(60)


async def _memory(adapter_id: str, base_url: str, streams: int) -> float:
    from bench.clients import ADAPTERS
    from bench.payloads import ANSWER_TEXT

    adapter_cls = next(a for a in ADAPTERS if a.id == adapter_id)
    adapter = adapter_cls(base_url, pool=streams)
    await adapter.start()
    try:
        # Warm up: every module, codec and lazy structure a stream needs is loaded, and the
        # pool holds one connection.
        if await adapter.stream_text(lambda: None) != ANSWER_TEXT:
            raise RuntimeError(f"{adapter_id} streamed a wrong answer")
        warm = asyncio.Event()
        warm.set()
        await adapter.stream_hold(lambda: None, warm)
        _settle_background_loads()
        gc.collect()
        before = _rss_bytes()

        release = asyncio.Event()
        opened = 0
        all_open = asyncio.Event()

        def one_opened() -> None:
            nonlocal opened
            opened += 1
            if opened == streams:
                all_open.set()

        tasks = [
            asyncio.create_task(adapter.stream_hold(one_opened, release)) for _ in range(streams)
        ]
        waiter = asyncio.create_task(all_open.wait())
        done, _ = await asyncio.wait(
            [waiter, *tasks], timeout=120, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise RuntimeError(f"a stream failed: {failed[0].exception()!r}")
            raise RuntimeError(f"only {opened} of {streams} streams opened in 120 s")
        gc.collect()
        after = _rss_bytes()
        release.set()
        await asyncio.gather(*tasks)
        return (after - before) / streams
    finally:
        await adapter.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.probes memory <adapter> <base_url> <streams>``."""
    parser = argparse.ArgumentParser(prog="python -m bench.probes")
    parser.add_argument("probe", choices=["memory"])
    parser.add_argument("adapter")
    parser.add_argument("base_url")
    parser.add_argument("streams", type=int)
    args = parser.parse_args(argv)
    per_stream = asyncio.run(_memory(args.adapter, args.base_url, args.streams))
    print(per_stream, flush=True)


if __name__ == "__main__":
    main()
