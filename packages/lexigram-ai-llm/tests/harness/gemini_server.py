"""Loopback servers speaking Gemini ``generateContent``: the Generative Language API and Vertex AI.

Shapes follow the API reference and the python-genai types (``GenerateContentResponse``,
``Candidate``, ``Part`` with ``thought``/``thoughtSignature``, ``UsageMetadata``,
``promptFeedback``) and the ``google.rpc.Status`` error bodies with ``ErrorInfo``,
``QuotaFailure`` and ``RetryInfo`` details, as Google sends them. Streams are
``streamGenerateContent?alt=sse``: one ``data: {GenerateContentResponse}`` per event, no
terminal event; the last one carries ``finishReason`` and the full ``usageMetadata``.

``VertexServer`` also serves an OAuth 2.0 token endpoint for the service-account (JWT bearer)
flow: it checks the assertion's RS256 signature against the service account's public key and
issues short bearer tokens, which the model routes then require.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harness.conformance import SECRET
from harness.server import FakeProviderServer, RecordedRequest, Reply, sse, text_pieces

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

# kind: (status, google.rpc status, ErrorInfo reason or None). Gemini reports neither an
# over-long prompt (INVALID_ARGUMENT, told apart only by its message) nor a content-policy
# block (a 200 with ``promptFeedback``) as distinct errors, so those kinds are not rendered.
GEMINI_ERRORS: dict[str, tuple[int, str, str | None]] = {
    "invalid_request": (400, "INVALID_ARGUMENT", None),
    "auth": (400, "INVALID_ARGUMENT", "API_KEY_INVALID"),
    "permission": (403, "PERMISSION_DENIED", None),
    "quota": (400, "FAILED_PRECONDITION", None),
    "not_found": (404, "NOT_FOUND", None),
    "rate_limit": (429, "RESOURCE_EXHAUSTED", None),
    "server": (500, "INTERNAL", None),
    "overloaded": (503, "UNAVAILABLE", None),
    "timeout": (504, "DEADLINE_EXCEEDED", None),
}
VERTEX_ERRORS: dict[str, tuple[int, str, str | None]] = {
    **GEMINI_ERRORS,
    "auth": (401, "UNAUTHENTICATED", "ACCESS_TOKEN_TYPE_UNSUPPORTED"),
    "quota": (403, "PERMISSION_DENIED", "BILLING_DISABLED"),
}
ERROR_KINDS = tuple(k for k in GEMINI_ERRORS if k != "timeout")

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}

_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]


def error_body(status: int, rpc_status: str, message: str, details: list[Any]) -> bytes:
    """A ``google.rpc.Status`` error body."""
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


class GeminiServer(FakeProviderServer):
    """The Generative Language API (``/v1beta/models/{model}:generateContent``)."""

    routes = (("POST", "/v1beta/models/{tail}"),)
    errors = GEMINI_ERRORS

    def __init__(self) -> None:
        super().__init__()
        #: ``promptFeedback.blockReason`` to answer with (no candidates), when set
        self.block_reason: str | None = None
        #: ``RetryInfo.retryDelay`` added to RESOURCE_EXHAUSTED errors, when set
        self.retry_delay: str | None = None
        #: put the thought signature on the thought part (Gemini 2.5) instead of on the
        #: first answer part (Gemini 3)
        self.signature_on_thought = False
        self.response_id = "Il0taoSYJ5Cez7IPq5-7kQ4"

    # -- auth ------------------------------------------------------------------------------

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        key = request.headers.get("x-goog-api-key")
        if key is None:
            return 403, error_body(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
                [],
            )
        if key != SECRET:
            return 400, error_body(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": _ERROR_INFO,
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        return None

    # -- routing ---------------------------------------------------------------------------

    def is_stream(self, request: RecordedRequest) -> bool:
        return request.path.endswith(":streamGenerateContent") and request.query.get("alt") == "sse"

    def model_of(self, request: RecordedRequest) -> str:
        return request.path.rsplit("/", 1)[-1].split(":", 1)[0]

    # -- answer content --------------------------------------------------------------------

    def _parts(self, reply: Reply) -> list[dict[str, Any]]:
        """The answer's parts in the order Gemini sends them."""
        parts: list[dict[str, Any]] = []
        signature = reply.thinking_signature
        if reply.thinking:
            thought: dict[str, Any] = {"text": reply.thinking, "thought": True}
            if signature and self.signature_on_thought:
                thought["thoughtSignature"] = signature
                signature = None
            parts.append(thought)
        if reply.text:
            parts.append({"text": reply.text})
        for _cid, name, args in reply.tool_calls:
            parts.append({"functionCall": {"name": name, "args": args}})
        if signature:
            # Gemini 3 signs the first function call, else the answer's (last) text part.
            calls = [p for p in parts if "functionCall" in p]
            answer = [p for p in parts if "text" in p and not p.get("thought")]
            target = calls[0] if calls else (answer[-1] if answer else None)
            if target is None:
                parts.append({"text": "", "thoughtSignature": signature})
            else:
                target["thoughtSignature"] = signature
        return parts

    def _usage(self, reply: Reply, *, final: bool = True) -> dict[str, Any]:
        if not final:
            return {"promptTokenCount": reply.prompt_tokens, "totalTokenCount": reply.prompt_tokens}
        usage: dict[str, Any] = {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": reply.completion_tokens - reply.reasoning_tokens,
            "totalTokenCount": reply.prompt_tokens + reply.completion_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}],
        }
        if reply.reasoning_tokens:
            usage["thoughtsTokenCount"] = reply.reasoning_tokens
        if reply.cached_tokens:
            usage["cachedContentTokenCount"] = reply.cached_tokens
        return usage

    def _response(
        self, request: RecordedRequest, candidate: dict[str, Any] | None, usage: dict[str, Any]
    ) -> dict[str, Any]:
        response: dict[str, Any] = {}
        if candidate is not None:
            response["candidates"] = [candidate]
        response["usageMetadata"] = usage
        response["modelVersion"] = self.model_of(request)
        response["responseId"] = self.response_id
        return response

    def _blocked(self, reply: Reply, request: RecordedRequest) -> dict[str, Any]:
        response = self._response(
            request,
            None,
            {
                "promptTokenCount": reply.prompt_tokens,
                "totalTokenCount": reply.prompt_tokens,
            },
        )
        response["promptFeedback"] = {
            "blockReason": self.block_reason,
            "safetyRatings": _SAFETY_RATINGS,
        }
        return response

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        if self.block_reason is not None:
            return orjson.dumps(self._blocked(reply, request))
        candidate: dict[str, Any] = {
            "content": {"parts": self._parts(reply), "role": "model"},
            "finishReason": _FINISH[reply.finish],
            "index": 0,
        }
        if reply.finish == "content_filter":
            candidate["safetyRatings"] = _SAFETY_RATINGS
        return orjson.dumps(self._response(request, candidate, self._usage(reply)))

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        if self.block_reason is not None:
            return [sse(self._blocked(reply, request))]
        partial = self._usage(reply, final=False)
        events: list[bytes] = []

        def chunk(parts: list[dict[str, Any]]) -> None:
            candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
            events.append(sse(self._response(request, candidate, partial)))

        parts = self._parts(reply)
        trailing_signature: str | None = None
        for part in parts:
            if "functionCall" in part:
                chunk([part])  # function calls arrive whole
                continue
            text = part.get("text", "")
            signature = part.get("thoughtSignature")
            pieces = text_pieces(text, reply.chunk_chars) or [""]
            for i, piece in enumerate(pieces):
                piece_part: dict[str, Any] = {"text": piece}
                if part.get("thought"):
                    piece_part["thought"] = True
                    if signature and i == len(pieces) - 1:
                        piece_part["thoughtSignature"] = signature
                chunk([piece_part])
            if signature and not part.get("thought"):
                # Streamed, the answer's signature comes last, on an empty text part.
                trailing_signature = signature
        final_parts = (
            [{"text": "", "thoughtSignature": trailing_signature}]
            if trailing_signature
            else [{"text": ""}]
        )
        candidate = {
            "content": {"parts": final_parts, "role": "model"},
            "finishReason": _FINISH[reply.finish],
            "index": 0,
        }
        events.append(sse(self._response(request, candidate, self._usage(reply))))
        return events

    # -- failures --------------------------------------------------------------------------

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        status, rpc_status, reason = self.errors[reply.error or "server"]
        details: list[Any] = []
        if reason is not None:
            details.append(
                {
                    "@type": _ERROR_INFO,
                    "reason": reason,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        if rpc_status == "RESOURCE_EXHAUSTED":
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaDimensions": {
                                "location": "global",
                                "model": self.model_of(request),
                            },
                            "quotaValue": "10",
                        }
                    ],
                }
            )
            if self.retry_delay is not None:
                details.append(
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": self.retry_delay,
                    }
                )
        return status, error_body(status, rpc_status, reply.error_message, details)

    def render_stream_error_event(self, reply: Reply) -> bytes:
        return sse(
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded. Please try again later.",
                    "status": "UNAVAILABLE",
                }
            }
        )


# -- Vertex AI -----------------------------------------------------------------------------

TOKEN_PREFIX = "ya29.LOOPBACK-TOKEN-"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# The audience Google's token endpoint requires in the assertion, wherever it is posted.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@functools.cache
def service_account_key() -> tuple[str, Any]:
    """An RSA key pair for a test service account: (private key PEM, public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


def write_service_account(server: VertexServer, directory: Path) -> Path:
    """A service-account JSON file whose ``token_uri`` is ``server``'s token endpoint."""
    pem, public_key = service_account_key()
    server.public_key = public_key
    info = {
        "type": "service_account",
        "project_id": "lexigram-test",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": server.client_email,
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": server.url + "/token",
        "universe_domain": "googleapis.com",
    }
    path = directory / f"service-account-{server.port}.json"
    path.write_text(json.dumps(info))
    return path


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VertexServer(GeminiServer):
    """Vertex AI (``/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:…``) plus an
    OAuth token endpoint at ``/token``."""

    routes = (
        ("POST", "/v1/projects/{project}/locations/{location}/publishers/google/models/{tail}"),
        ("POST", "/token"),
    )
    errors = VERTEX_ERRORS
    client_email = "lexigram-test@lexigram-test.iam.gserviceaccount.com"

    def __init__(self) -> None:
        super().__init__()
        self.public_key: Any = None
        self.token_lifetime = 3600
        self.token_requests: list[dict[str, Any]] = []  # verified JWT claims, in order
        self.tokens: dict[str, float] = {}  # issued token -> expiry (monotonic)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/token":
            return await self._token(request)
        return await super().handle(request)

    async def _token(self, request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode())
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        claims = self._verify(assertion) if grant == JWT_BEARER else None
        if claims is None:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                status=400,
            )
        self.token_requests.append(claims)
        token = f"{TOKEN_PREFIX}{len(self.token_requests)}"
        self.tokens[token] = time.monotonic() + self.token_lifetime
        return web.json_response(
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _verify(self, assertion: str) -> dict[str, Any] | None:
        """The claims of a correctly signed, current JWT for this token endpoint."""
        try:
            head, body, signature = assertion.split(".")
            header = orjson.loads(_b64url_decode(head))
            claims: dict[str, Any] = orjson.loads(_b64url_decode(body))
            if header.get("alg") != "RS256" or self.public_key is None:
                return None
            self.public_key.verify(
                _b64url_decode(signature),
                f"{head}.{body}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return None
        now = time.time()
        if (
            claims.get("iss") != self.client_email
            or claims.get("aud") != GOOGLE_TOKEN_AUDIENCE
            or CLOUD_PLATFORM not in str(claims.get("scope", "")).split()
            or not float(claims.get("iat", now + 60)) <= now + 5
            or not float(claims.get("exp", 0)) > now - 5
        ):
            return None
        return claims

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        if "x-goog-api-key" in request.headers:
            return 400, error_body(
                400, "INVALID_ARGUMENT", "API keys are not supported by this API.", []
            )
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return 401, error_body(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
                [
                    {
                        "@type": _ERROR_INFO,
                        "reason": "CREDENTIALS_MISSING",
                        "domain": "googleapis.com",
                    }
                ],
            )
        expiry = self.tokens.get(header[len("Bearer ") :])
        if expiry is None or expiry < time.monotonic():
            return 401, error_body(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                [
                    {
                        "@type": _ERROR_INFO,
                        "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                        "domain": "googleapis.com",
                    }
                ],
            )
        return None
