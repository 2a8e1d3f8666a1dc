"""A loopback server for the model-list endpoint of each wire family, paged the provider's way.

Entries are shaped as each API reference shows them:

- ``openai``: ``GET /v1/models`` -> ``{"object": "list", "data": [{"id", "object": "model",
  "created", "owned_by"}]}`` (one page); ``together`` answers a bare list with
  ``context_length``; ``mistral`` adds ``capabilities`` and ``max_context_length``.
- ``anthropic``: ``GET /v1/models?limit=&after_id=`` -> ``{"data": [{"type": "model", "id",
  "display_name", "created_at"}], "has_more", "first_id", "last_id"}``; needs ``x-api-key`` and
  ``anthropic-version``.
- ``gemini``: ``GET /v1beta/models?pageSize=&pageToken=`` -> ``{"models": [{"name":
  "models/...", "displayName", "inputTokenLimit", "outputTokenLimit",
  "supportedGenerationMethods"}], "nextPageToken"}``; key in ``x-goog-api-key``.
- ``cohere``: ``GET /v1/models?page_size=&page_token=`` -> ``{"models": [{"name", "endpoints",
  "finetuned", "context_length", "tokenizer_url", "features"}], "next_page_token"}``.
- ``ollama``: ``GET /api/tags`` -> ``{"models": [{"name", "model", "size", "digest",
  "details"}]}``.
- ``bedrock``: ``GET /foundation-models`` (SigV4, service ``bedrock``) -> ``{"modelSummaries":
  [{"modelArn", "modelId", "modelName", "providerName", "inputModalities", ...}]}``.

Hostile modes: ``stall`` (answer after that many seconds), ``endless`` (every page says there
is more, with a fresh cursor), ``same_cursor`` (every page gives the same cursor),
``redirect_to`` (a 307 to that URL), ``echo_key_status`` (an error whose message repeats the
key it was sent), ``raw_body`` (these bytes instead of a page).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from harness.conformance import SECRET

WIRES = ("openai", "together", "mistral", "anthropic", "gemini", "cohere", "ollama", "bedrock")


@dataclass
class Listed:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def entry(wire: str, model: str) -> dict[str, Any]:
    """``model`` as the ``wire``'s list endpoint describes a model."""
    if wire == "openai":
        return {"id": model, "object": "model", "created": 1721172741, "owned_by": "system"}
    if wire == "together":
        return {
            "id": model,
            "object": "model",
            "created": 1733961600,
            "type": "chat",
            "display_name": model.rsplit("/", 1)[-1],
            "organization": "Meta",
            "context_length": 131072,
            "pricing": {"hourly": 0, "input": 0.88, "output": 0.88, "base": 0, "finetune": 0},
        }
    if wire == "mistral":
        return {
            "id": model,
            "object": "model",
            "created": 1741305600,
            "owned_by": "mistralai",
            "capabilities": {
                "completion_chat": True,
                "completion_fim": False,
                "function_calling": True,
                "fine_tuning": False,
                "vision": True,
            },
            "name": model,
            "description": "Mistral Small",
            "max_context_length": 131072,
            "aliases": [],
            "type": "base",
        }
    if wire == "anthropic":
        return {
            "type": "model",
            "id": model,
            "display_name": model.replace("-", " ").title(),
            "created_at": "2025-05-22T00:00:00Z",
        }
    if wire == "gemini":
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": model,
            "description": "Stable version",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": True,
        }
    if wire == "cohere":
        return {
            "name": model,
            "endpoints": ["chat"],
            "finetuned": False,
            "context_length": 256000,
            "tokenizer_url": "https://storage.googleapis.com/cohere-public/tokenizers/x.json",
            "default_endpoints": ["chat"],
            "features": ["tools", "strict_tools", "json_mode", "json_schema"],
        }
    if wire == "ollama":
        return {
            "name": model,
            "model": model,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 2019393189,
            "digest": "a" * 64,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": ["llama"],
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        }
    if wire == "bedrock":
        return {
            "modelArn": f"arn:aws:bedrock:us-west-2::foundation-model/{model}",
            "modelId": model,
            "modelName": model.split(".", 1)[-1],
            "providerName": "Anthropic",
            "inputModalities": ["TEXT", "IMAGE"],
            "outputModalities": ["TEXT"],
            "responseStreamingSupported": True,
            "customizationsSupported": [],
            "inferenceTypesSupported": ["ON_DEMAND"],
            "modelLifecycle": {"status": "ACTIVE"},
        }
    raise ValueError(f"unknown wire {wire!r}")


_PATHS = {
    "openai": "/v1/models",
    "together": "/v1/models",
    "mistral": "/v1/models",
    "anthropic": "/v1/models",
    "gemini": "/v1beta/models",
    "cohere": "/v1/models",
    "ollama": "/api/tags",
    "bedrock": "/foundation-models",
}


@dataclass
class ModelListServer:
    """Serves ``models`` (names) on ``wire``'s list endpoint, ``page_size`` per page."""

    wire: str
    models: list[str] = field(default_factory=list)
    page_size: int = 1000
    key: str | None = SECRET  # None: no key expected (Ollama)
    stall: float = 0.0
    endless: bool = False
    same_cursor: bool = False
    redirect_to: str | None = None
    echo_key_status: int | None = None
    raw_body: bytes | None = None  # sent as it is, 200, instead of a page
    #: another server: how many requests it was holding, their clients still connected, when
    #: each of ours arrived (waiting up to 2 s for one), to see that a client asks both at once
    watch: ModelListServer | None = None
    watched_pending: list[int] = field(default_factory=list)
    requests: list[Listed] = field(default_factory=list)
    _open: list[web.Request] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def path(self) -> str:
        return _PATHS[self.wire]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> ModelListServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- serving ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Requests being answered now whose client is still connected."""
        return sum(
            1 for r in self._open if r.transport is not None and not r.transport.is_closing()
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._open.append(request)
        try:
            return await self._answer(request)
        finally:
            self._open.remove(request)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Listed(request.method, request.path, dict(request.query), headers))
        if self.watch is not None:
            for _ in range(40):
                if self.watch.pending:
                    break
                await asyncio.sleep(0.05)
            # A client that left a moment ago may not have been noticed yet: look again.
            await asyncio.sleep(0.2)
            self.watched_pending.append(self.watch.pending)
        if self.redirect_to is not None:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        if self.stall:
            await self._stall(request)
        if request.path != self.path:
            return web.json_response({"error": {"message": "not found"}}, status=404)
        sent = self._sent_key(request, headers)
        if self.echo_key_status is not None:
            return self._error(self.echo_key_status, f"Incorrect API key provided: {sent}")
        if sent != self.key:
            return self._error(401, "invalid api key")
        if self.wire == "anthropic" and "anthropic-version" not in headers:
            return self._error(400, "anthropic-version: header is required")
        body = self.raw_body if self.raw_body is not None else orjson.dumps(self._page(request))
        return web.Response(body=body, content_type="application/json")

    async def _stall(self, request: web.Request) -> None:
        """Wait ``stall`` seconds, or until the client hangs up."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.stall
        while loop.time() < until:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.05)

    def _sent_key(self, request: web.Request, headers: dict[str, str]) -> str | None:
        if self.wire == "anthropic":
            return headers.get("x-api-key")
        if self.wire == "gemini":
            return headers.get("x-goog-api-key")
        if self.wire == "bedrock":
            from harness.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, verify_sigv4

            problem = verify_sigv4(
                request.method,
                request.raw_path,
                headers,
                b"",
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
                region=REGION,
            )
            return self.key if problem is None else None
        bearer = headers.get("authorization", "")
        return bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None

    def _error(self, status: int, message: str) -> web.Response:
        if self.wire == "anthropic":
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": "authentication_error", "message": message},
            }
        elif self.wire == "gemini":
            body = {"error": {"code": status, "message": message, "status": "UNAUTHENTICATED"}}
        elif self.wire in ("cohere", "bedrock", "ollama"):
            body = {"message": message}
        else:
            body = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        return web.json_response(body, status=status)

    # -- pages -----------------------------------------------------------------------------

    def _cursor_name(self) -> str | None:
        return {
            "openai": "after",
            "anthropic": "after_id",
            "gemini": "pageToken",
            "cohere": "page_token",
        }.get(self.wire)

    def _page(self, request: web.Request) -> Any:
        cursor_name = self._cursor_name()
        cursor = request.query.get(cursor_name) if cursor_name else None
        if self.endless:
            number = len(self.requests)
            page = [f"endless-{number}"]
            following: str | None = "again" if self.same_cursor else f"endless-{number}"
        else:
            start = 0
            if cursor:
                start = self.models.index(cursor) + 1 if self.wire == "anthropic" else int(cursor)
            page = self.models[start : start + self.page_size]
            end = start + len(page)
            more = end < len(self.models)
            following = (page[-1] if self.wire == "anthropic" else str(end)) if more else None
            if self.same_cursor and more:
                following = page[-1] if self.wire == "anthropic" else "1"
        items = [entry(self.wire, model) for model in page]
        wire = self.wire
        if wire == "together":
            return items
        if wire in ("openai", "mistral"):
            body: dict[str, Any] = {"object": "list", "data": items}
            if following is not None:
                body.update(has_more=True, last_id=following)
            return body
        if wire == "anthropic":
            return {
                "data": items,
                "has_more": following is not None,
                "first_id": page[0] if page else None,
                "last_id": following if following is not None else (page[-1] if page else None),
            }
        if wire == "gemini":
            return {"models": items, **({"nextPageToken": following} if following else {})}
        if wire == "cohere":
            return {"models": items, **({"next_page_token": following} if following else {})}
        if wire == "ollama":
            return {"models": items}
        return {"modelSummaries": items}
