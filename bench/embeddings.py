"""Embeddings throughput: 10,000 short texts through lexigram, raw aiohttp and the openai SDK.

A benchmark, not a test: nothing is asserted. The fake OpenAI ``/v1/embeddings`` server runs in
its own process on loopback (its CPU never counts as the client's) and answers pre-serialised
bodies: one 1,536-float vector per input, base64 (little-endian float32) when the request asks
for it (all three clients do: the SDK by default, lexigram for the openai profile, the raw
client explicitly). Every client sends the same batches of 2,048 texts concurrently and builds
``list[list[float]]``; the rounds alternate between clients. Also: base64 decoding with
``array`` against ``struct.unpack``, and float JSON against base64 for lexigram.

    .venv/bin/python -m bench.embeddings [--texts 10000] [--rounds 5] [--dimensions 1536]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import socket
import statistics
import struct
import sys
import time
import timeit
from array import array
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

MODEL = "text-embedding-3-small"
BATCH = 2048


# -- the fake provider, in its own process -----------------------------------------------------


def _serve(port: int, dimensions: int, ready: Any) -> None:
    from aiohttp import web

    vector = [((i * 37) % 256 - 128) / 128 for i in range(dimensions)]
    packed = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
    bodies: dict[tuple[int, str], bytes] = {}

    def body_for(count: int, encoding: str) -> bytes:
        key = (count, encoding)
        if key not in bodies:
            embedding: Any = packed if encoding == "base64" else vector
            bodies[key] = orjson.dumps(
                {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": embedding}
                        for i in range(count)
                    ],
                    "model": MODEL,
                    "usage": {"prompt_tokens": count * 4, "total_tokens": count * 4},
                }
            )
        return bodies[key]

    async def embeddings(request: web.Request) -> web.Response:
        data = orjson.loads(await request.read())
        texts = data["input"]
        count = 1 if isinstance(texts, str) else len(texts)
        encoding = data.get("encoding_format", "float")
        return web.Response(body=body_for(count, encoding), content_type="application/json")

    async def main() -> None:
        app = web.Application(client_max_size=256 * 2**20)
        app.router.add_post("/v1/embeddings", embeddings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the clients ---------------------------------------------------------------------------------

Client = Callable[[list[str]], Awaitable[list[list[float]]]]


def _batches(texts: list[str]) -> list[list[str]]:
    return [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]


async def make_lexigram(url: str, *, encoding: str = "base64") -> tuple[Client, Any]:
    from lexigram.ai.llm import ClientConfig, create_embedding_client

    extra = {} if encoding == "base64" else {"embedding_encoding": encoding}
    client = create_embedding_client(
        ClientConfig(
            provider="openai", api_key="sk-bench", api_base=f"{url}/v1", model=MODEL, extra=extra
        )
    )

    async def run(texts: list[str]) -> list[list[float]]:
        return (await client.embed(texts, cache=False)).unwrap().vectors

    return run, client.close


async def make_aiohttp(url: str) -> tuple[Client, Any]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100), headers={"Authorization": "Bearer sk-bench"}
    )

    async def one(batch: list[str]) -> list[list[float]]:
        payload = orjson.dumps({"model": MODEL, "input": batch, "encoding_format": "base64"})
        async with session.post(
            f"{url}/v1/embeddings",
            data=payload,
            headers={"Content-Type": "application/json"},
        ) as response:
            data = orjson.loads(await response.read())
        out = []
        for item in data["data"]:
            values = array("f")
            values.frombytes(base64.b64decode(item["embedding"]))
            out.append(values.tolist())
        return out

    async def run(texts: list[str]) -> list[list[float]]:
        parts = await asyncio.gather(*(one(b) for b in _batches(texts)))
        return [v for part in parts for v in part]

    return run, session.close


async def make_openai_sdk(url: str) -> tuple[Client, Any]:
    import openai

    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=f"{url}/v1", max_retries=0)

    async def one(batch: list[str]) -> list[list[float]]:
        response = await client.embeddings.create(model=MODEL, input=batch)
        return [item.embedding for item in response.data]

    async def run(texts: list[str]) -> list[list[float]]:
        parts = await asyncio.gather(*(one(b) for b in _batches(texts)))
        return [v for part in parts for v in part]

    return run, client.close


# -- the run -------------------------------------------------------------------------------------


async def measure(url: str, texts: list[str], rounds: int, dimensions: int) -> dict[str, Any]:
    makers: dict[str, Callable[[], Awaitable[tuple[Client, Any]]]] = {
        "lexigram (base64)": lambda: make_lexigram(url),
        "lexigram (float JSON)": lambda: make_lexigram(url, encoding="float"),
        "aiohttp + orjson (base64, raw)": lambda: make_aiohttp(url),
    }
    try:
        import openai  # noqa: F401

        makers["openai SDK (base64 default)"] = lambda: make_openai_sdk(url)
    except ImportError:
        print("openai SDK not installed: skipped", file=sys.stderr)
    clients: dict[str, tuple[Client, Any]] = {}
    for name, make in makers.items():
        run, close = await make()
        vectors = await run(texts)  # warm-up, and a check of the shape
        assert len(vectors) == len(texts) and len(vectors[0]) == dimensions, name
        clients[name] = (run, close)
    walls: dict[str, list[float]] = {name: [] for name in clients}
    cpus: dict[str, list[float]] = {name: [] for name in clients}
    for round_ in range(rounds):
        for name, (run, _) in clients.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await run(texts)
            walls[name].append(time.perf_counter() - wall0)
            cpus[name].append(time.process_time() - cpu0)
        print(f"round {round_ + 1}/{rounds} done", file=sys.stderr)
    for _, close in clients.values():
        await close()
    return {
        name: {
            "texts_per_s": len(texts) / statistics.median(walls[name]),
            "wall_s": statistics.median(walls[name]),
            "client_cpu_s": statistics.median(cpus[name]),
        }
        for name in clients
    }


def decode_micro(dimensions: int) -> dict[str, float]:
    """Microseconds to decode one base64 vector into a list, numpy-free."""
    raw = base64.b64encode(struct.pack(f"<{dimensions}f", *range(dimensions)))

    def with_array() -> list[float]:
        values = array("f")
        values.frombytes(base64.b64decode(raw))
        return values.tolist()

    def with_struct() -> list[float]:
        data = base64.b64decode(raw)
        return list(struct.unpack(f"<{len(data) // 4}f", data))

    def with_memoryview() -> list[float]:
        return memoryview(base64.b64decode(raw)).cast("f").tolist()

    out = {}
    for name, fn in (
        ("array.frombytes + tolist", with_array),
        ("struct.unpack + list", with_struct),
        ("memoryview.cast + tolist", with_memoryview),
    ):
        n = 2000
        out[name] = min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dimensions", type=int, default=1536)
    args = parser.parse_args()
    texts = [f"short text number {i} about something" for i in range(args.texts)]
    port = _free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=_serve, args=(port, args.dimensions, ready), daemon=True
    )
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the fake server did not start")
        results = asyncio.run(
            measure(f"http://127.0.0.1:{port}", texts, args.rounds, args.dimensions)
        )
    finally:
        server.terminate()
        server.join()
    print(
        f"\n## Embeddings: {args.texts:,} texts, {args.dimensions} floats each, batches of "
        f"{BATCH} sent concurrently (median of {args.rounds} rounds)\n"
    )
    print("| client | texts/s | wall (s) | client CPU (s) |")
    print("|---|---:|---:|---:|")
    for name, row in results.items():
        print(
            f"| {name} | {row['texts_per_s']:,.0f} | {row['wall_s']:.3f} | "
            f"{row['client_cpu_s']:.3f} |"
        )
    print(f"\n## Decoding one base64 vector of {args.dimensions} floats (µs, best of 5)\n")
    print("| method | µs |")
    print("|---|---:|")
    for name, micros in decode_micro(args.dimensions).items():
        print(f"| {name} | {micros:.1f} |")


if __name__ == "__main__":
    main()
