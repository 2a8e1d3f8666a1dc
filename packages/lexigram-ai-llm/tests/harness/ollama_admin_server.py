"""A loopback server speaking Ollama's model-management API, as ollama/ollama ``docs/api.md``
describes it: ``GET /api/tags``, ``GET /api/ps``, ``DELETE /api/delete`` (200, or 404 with
``{"error": ...}``) and ``POST /api/pull`` streaming NDJSON progress (``pulling manifest``,
per-layer ``digest``/``total``/``completed`` lines, ``verifying sha256 digest``,
``writing manifest``, ``success``; a failure mid-pull is an ``{"error": ...}`` line).

The chat API lives in ``ollama_server.py``; this one only manages models."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

MODIFIED_AT = "2024-06-04T14:38:31.83753-07:00"


@dataclass
class LibraryModel:
    """A model the fake registry can serve to ``/api/pull``."""

    name: str
    layers: list[tuple[str, int]]  # (digest, size in bytes)
    family: str = "llama"
    parameter_size: str = "135M"
    quantization_level: str = "Q4_1"
    #: send this many progress lines, then close the connection without ``success``
    cut_after: int | None = None
    #: send this many progress lines, then an ``{"error": ...}`` line
    error_after: int | None = None
    error: str = "max retries exceeded: unexpected EOF"
    steps: int = 4  # progress lines per layer

    @property
    def size(self) -> int:
        return sum(size for _, size in self.layers)


@dataclass
class Recorded:
    method: str
    path: str
    body: Any


@dataclass
class OllamaAdminServer:
    """Holds the pulled and running models; tests inspect ``requests`` and ``pulled``."""

    library: dict[str, LibraryModel] = field(default_factory=dict)
    pulled: dict[str, LibraryModel] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    line_delay: float = 0.0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _details(self, model: LibraryModel) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": model.family,
            "families": [model.family],
            "parameter_size": model.parameter_size,
            "quantization_level": model.quantization_level,
        }

    async def tags(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded("GET", "/api/tags", None))
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": MODIFIED_AT,
                "size": model.size,
                "digest": model.layers[0][0].removeprefix("sha256:"),
                "details": self._details(model),
            }
            for name, model in self.pulled.items()
        ]
        return web.json_response({"models": models})

    async def ps(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded("GET", "/api/ps", None))
        models = [
            {
                "name": name,
                "model": name,
                "size": self.pulled[name].size,
                "digest": self.pulled[name].layers[0][0].removeprefix("sha256:"),
                "details": self._details(self.pulled[name]),
                "expires_at": "2024-06-04T14:38:31.83753-07:00",
                "size_vram": 0,
            }
            for name in sorted(self.running)
            if name in self.pulled
        ]
        return web.json_response({"models": models})

    async def delete(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.requests.append(Recorded("DELETE", "/api/delete", body))
        name = body.get("model") or body.get("name")
        if name not in self.pulled:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        del self.pulled[name]
        self.running.discard(name)
        return web.Response(status=200)

    async def pull(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests.append(Recorded("POST", "/api/pull", body))
        name = body.get("model") or body.get("name")
        if not name:
            return web.json_response({"error": "model is required"}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        sent = 0

        async def send(line: dict[str, Any]) -> None:
            nonlocal sent
            await response.write(orjson.dumps(line) + b"\n")
            sent += 1
            if self.line_delay:
                await asyncio.sleep(self.line_delay)

        await send({"status": "pulling manifest"})
        model = self.library.get(name)
        if model is None:
            await send({"error": "pull model manifest: file does not exist"})
            await response.write_eof()
            return response
        for digest, size in model.layers:
            for step in range(1, model.steps + 1):
                if model.cut_after is not None and sent >= model.cut_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if model.error_after is not None and sent >= model.error_after:
                    await send({"error": model.error})
                    await response.write_eof()
                    return response
                await send(
                    {
                        "status": f"pulling {digest.removeprefix('sha256:')[:12]}",
                        "digest": digest,
                        "total": size,
                        "completed": size * step // model.steps,
                    }
                )
        for status in ("verifying sha256 digest", "writing manifest"):
            await send({"status": status})
        self.pulled[name] = model  # the manifest is written before success is reported
        await send({"status": "success"})
        await response.write_eof()
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/tags", self.tags)
        app.router.add_get("/api/ps", self.ps)
        app.router.add_delete("/api/delete", self.delete)
        app.router.add_post("/api/pull", self.pull)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
