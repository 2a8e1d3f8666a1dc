"""A loopback server for every embeddings wire, answering with the documented payloads.

Routes and shapes:

- OpenAI (and Mistral) ``POST /v1/embeddings`` -> ``{"object": "list", "data": [{"object":
  "embedding", "index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}``;
  ``encoding_format=base64`` answers little-endian float32 in base64, as the API does.
  (platform.openai.com/docs/api-reference/embeddings/create)
- Cohere ``POST /v2/embed`` -> ``{"id", "embeddings": {"float": [...]}, "texts", "meta":
  {"api_version": {"version": "2"}, "billed_units": {"input_tokens"}}}``; ``input_type`` is
  required (docs.cohere.com/reference/embed).
- Ollama ``POST /api/embed`` -> ``{"model", "embeddings", "total_duration",
  "prompt_eval_count"}`` (github.com/ollama/ollama/blob/main/docs/api.md).
- Gemini ``POST /v1beta/models/{model}:batchEmbedContents`` -> ``{"embeddings": [{"values"}]}``
  (ai.google.dev/api/embeddings).
- Vertex AI ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predict`` ->
  ``{"predictions": [{"embeddings": {"values", "statistics": {"token_count"}}}]}``
  (cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api).
- Bedrock ``POST /model/{id}/invoke``: Titan ``{"embedding", "inputTextTokenCount"}``, Cohere
  ``{"id", "embeddings", "texts", "response_type": "embeddings_floats"}``; every request must
  carry a SigV4 signature the server recomputes with botocore (as ``bedrock_server`` does).

Vectors are a function of the text (and the dimensions asked), with values k/128 that float32
holds exactly, so base64 and JSON floats decode to the same numbers. ``fail_once(text, ...)``
answers the first request holding ``text`` with an error, once.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from harness.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, verify_sigv4
from harness.server import RecordedRequest

DEFAULT_DIMENSIONS = 8


def vector_for(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The server's deterministic vector for ``text`` (float32-exact values)."""
    out: list[float] = []
    seed = text.encode()
    while len(out) < dimensions:
        seed = hashlib.sha256(seed).digest()
        out.extend((b - 128) / 128 for b in seed)
    return out[:dimensions]


def tokens_for(text: str) -> int:
    return max(1, len(text.split()))


@dataclass
class _Failure:
    text: str
    status: int
    body: bytes
    headers: dict[str, str]


class EmbeddingServer:
    """Serves all embedding wires on one port; records every request."""

    def __init__(self, *, sigv4: bool = True) -> None:
        self.requests: list[RecordedRequest] = []
        self.failures: list[_Failure] = []
        self.sigv4 = sigv4
        self.rejections: list[str] = []
        self.raw_body: Any = None  # OpenAI route: answer this JSON instead (a malformed answer)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_once(
        self,
        text: str,
        status: int = 429,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the first request whose texts include ``text`` with ``status``, once."""
        payload = body or {
            "error": {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }
        self.failures.append(_Failure(text, status, orjson.dumps(payload), headers or {}))

    def texts_of(self, request: RecordedRequest) -> list[str]:
        data = request.json
        if "input" in data:
            value = data["input"]
            return [value] if isinstance(value, str) else list(value)
        if "texts" in data:
            return list(data["texts"])
        if "requests" in data:
            return [r["content"]["parts"][0]["text"] for r in data["requests"]]
        if "inputText" in data:
            return [data["inputText"]]
        return []

    # -- serving ---------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        recorded = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        self.requests.append(recorded)
        return recorded

    def _failure_for(self, texts: list[str]) -> web.Response | None:
        for failure in self.failures:
            if failure.text in texts:
                self.failures.remove(failure)
                return web.Response(
                    status=failure.status,
                    body=failure.body,
                    headers=failure.headers,
                    content_type="application/json",
                )
        return None

    async def openai(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if not recorded.headers.get("authorization", "").startswith("Bearer "):
            return _json({"error": {"message": "no key", "type": "invalid_request_error"}}, 401)
        texts = self.texts_of(recorded)
        failed = self._failure_for(texts)
        if failed is not None:
            return failed
        if self.raw_body is not None:
            return _json(self.raw_body)
        data = recorded.json
        dims = data.get("dimensions") or data.get("output_dimension") or DEFAULT_DIMENSIONS
        items = []
        for i, text in enumerate(texts):
            vector = vector_for(text, dims)
            if data.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                encoded = vector
            items.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(tokens_for(t) for t in texts)
        return _json(
            {
                "object": "list",
                "data": items,
                "model": data["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def cohere(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        data = recorded.json
        if "input_type" not in data:
            return _json({"message": "invalid request: input_type is required"}, 400)
        texts = self.texts_of(recorded)
        failed = self._failure_for(texts)
        if failed is not None:
            return failed
        dims = data.get("output_dimension") or DEFAULT_DIMENSIONS
        return _json(
            {
                "id": "emb-1",
                "embeddings": {"float": [vector_for(t, dims) for t in texts]},
                "texts": texts,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": sum(tokens_for(t) for t in texts)},
                },
                "response_type": "embeddings_by_type",
            }
        )

    async def ollama(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        data = recorded.json
        texts = self.texts_of(recorded)
        failed = self._failure_for(texts)
        if failed is not None:
            return failed
        dims = data.get("dimensions") or DEFAULT_DIMENSIONS
        return _json(
            {
                "model": data["model"],
                "embeddings": [vector_for(t, dims) for t in texts],
                "total_duration": 14143917,
                "load_duration": 1019500,
                "prompt_eval_count": sum(tokens_for(t) for t in texts),
            }
        )

    async def gemini(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if not recorded.headers.get("x-goog-api-key"):
            return _json(
                {"error": {"code": 403, "message": "no key", "status": "PERMISSION_DENIED"}}, 403
            )
        texts = self.texts_of(recorded)
        failed = self._failure_for(texts)
        if failed is not None:
            return failed
        requests = recorded.json["requests"]
        return _json(
            {
                "embeddings": [
                    {
                        "values": vector_for(
                            r["content"]["parts"][0]["text"],
                            r.get("outputDimensionality") or DEFAULT_DIMENSIONS,
                        )
                    }
                    for r in requests
                ]
            }
        )

    async def vertex(self, request: web.Request) -> web.Response:
        """Vertex AI ``…/publishers/google/models/{model}:predict`` (text embeddings)."""
        recorded = await self._record(request)
        if not recorded.headers.get("authorization", "").startswith("Bearer "):
            return _json({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, 401)
        data = recorded.json
        dims = (data.get("parameters") or {}).get("outputDimensionality") or DEFAULT_DIMENSIONS
        return _json(
            {
                "predictions": [
                    {
                        "embeddings": {
                            "values": vector_for(i["content"], dims),
                            "statistics": {
                                "truncated": False,
                                "token_count": tokens_for(i["content"]),
                            },
                        }
                    }
                    for i in data["instances"]
                ],
                "metadata": {"billableCharacterCount": 10},
            }
        )

    async def bedrock(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if self.sigv4:
            rejected = verify_sigv4(
                request.method,
                request.raw_path,
                recorded.headers,
                recorded.body,
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
                region=REGION,
            )
            if rejected is not None:
                self.rejections.append(rejected[0])
                return _json(
                    {"message": rejected[1]},
                    403,
                    headers={"x-amzn-ErrorType": rejected[0] + ":http://internal.amazon.com/"},
                )
        texts = self.texts_of(recorded)
        failed = self._failure_for(texts)
        if failed is not None:
            return failed
        data = recorded.json
        model = request.match_info["model"]
        if "cohere.embed" in model:
            return _json(
                {
                    "id": "emb-1",
                    "embeddings": [vector_for(t) for t in texts],
                    "texts": texts,
                    "response_type": "embeddings_floats",
                }
            )
        dims = data.get("dimensions") or DEFAULT_DIMENSIONS
        return _json(
            {
                "embedding": vector_for(data["inputText"], dims),
                "inputTextTokenCount": tokens_for(data["inputText"]),
            }
        )

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/embeddings", self.openai)
        app.router.add_post("/v2/embed", self.cohere)
        app.router.add_post("/api/embed", self.ollama)
        app.router.add_post(r"/v1beta/models/{model}:batchEmbedContents", self.gemini)
        app.router.add_post("/model/{model}/invoke", self.bedrock)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:predict",
            self.vertex,
        )
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(payload),
        headers=headers,
        content_type="application/json",
    )
