"""A loopback server speaking Bedrock's Converse API the way AWS does (shapes from botocore's
``bedrock-runtime`` service model and the Converse API reference).

- ``POST /model/{modelId}/converse`` answers JSON; ``/converse-stream`` answers AWS's binary
  event-stream framing, written here by a small encoder (prelude with total and header
  lengths, prelude CRC32, string headers, payload, message CRC32) that the client decodes with
  botocore's own decoder.
- Every request must carry a real SigV4 signature: the server recomputes it with botocore from
  the known test credentials over what arrived on the wire (method, raw path, signed headers,
  body) and rejects a mismatch with 403 ``InvalidSignatureException``, an unknown access key
  with 403 ``UnrecognizedClientException``, as AWS does. A Bedrock API key (bearer token) is
  accepted instead when the server knows it.
- Errors carry their type in the ``x-amzn-ErrorType`` header and ``{"message": ...}`` bodies.
- Requests that break Converse's rules (roles not alternating, a tool result for no tool use,
  tool blocks without ``toolConfig``) get a 400 ``ValidationException``.
"""

from __future__ import annotations

import binascii
import datetime
import hmac
import re
import struct
from typing import Any

import orjson
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness.server import FakeProviderServer, RecordedRequest, Reply, arguments_text, text_pieces

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # the SigV4 test-suite example key
REGION = "us-west-2"
SERVICE = "bedrock"
REQUEST_ID = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"

_ERROR_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

# kind: (status, error type, message) as Bedrock answers them.
_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_request": (400, "ValidationException", "1 validation error detected"),
    "context_length": (
        400,
        "ValidationException",
        "The model returned the following errors: Input is too long for requested model.",
    ),
    "auth": (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    "permission": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "quota": (
        400,
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account.",
    ),
    "not_found": (404, "ResourceNotFoundException", "The provided model identifier is invalid."),
    "rate_limit": (
        429,
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
    ),
    "server": (500, "InternalServerException", "The server encountered an internal error."),
    "overloaded": (503, "ServiceUnavailableException", "The service is unavailable."),
}

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
}

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


# -- event-stream framing ----------------------------------------------------------------------


def encode_event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length), prelude CRC32,
    headers (name length, name, type 7 = string, value length, value), payload, message CRC32."""
    header_bytes = b"".join(
        struct.pack(">B", len(name.encode()))
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + header_bytes + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(name: str, payload: dict[str, Any]) -> bytes:
    """A Converse stream event; Bedrock pads payloads with a ``p`` field of varying length."""
    body = {
        **payload,
        "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123"[: 8 + len(name)],
    }
    return encode_event_message(
        {":event-type": name, ":content-type": "application/json", ":message-type": "event"},
        orjson.dumps(body),
    )


def exception_event(exception_type: str, payload: dict[str, Any]) -> bytes:
    return encode_event_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        orjson.dumps(payload),
    )


def use_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard chain finds these in the environment; nothing from this machine leaks in."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# -- SigV4 -------------------------------------------------------------------------------------


def verify_sigv4(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    token: str | None = None,
    now: datetime.datetime | None = None,
) -> tuple[str, str] | None:
    """``None`` when the request is signed correctly, else ``(error type, message)``.

    The signature is recomputed by botocore over the request as it arrived (``raw_path`` is the
    path before any decoding) with only the headers the client said it signed."""
    auth = headers.get("authorization")
    if not auth:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    match = _AUTH.match(auth)
    if match is None:
        return (
            "IncompleteSignatureException",
            "Authorization header requires Credential, SignedHeaders and Signature.",
        )
    if match["key"] != access_key:
        return (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    if match["region"] != region or match["service"] != SERVICE:
        return (
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region and service ({region}/{SERVICE}).",
        )
    if token is not None and headers.get("x-amz-security-token") != token:
        return (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return "IncompleteSignatureException", "X-Amz-Date is missing or malformed."
    now = now or datetime.datetime.now(datetime.UTC)
    if abs((now - signed_at).total_seconds()) > 300 or not amz_date.startswith(match["date"]):
        return "InvalidSignatureException", "Signature expired."
    signed_names = match["signed"].split(";")
    if "host" not in signed_names or any(name not in headers for name in signed_names):
        return "InvalidSignatureException", "A signed header is missing from the request."
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{raw_path}",
        headers={name: headers[name] for name in signed_names},
        data=body,
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret_key, token), SERVICE, region)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
        )
    return None


def _error_body(error_type: str, message: str) -> bytes:
    # ``__type`` tells ``handle`` which ``x-amzn-ErrorType`` to send; it is not in the body AWS
    # sends, and ``handle`` takes it out.
    return orjson.dumps({"__type": error_type, "message": message})


# -- the server --------------------------------------------------------------------------------


class BedrockServer(FakeProviderServer):
    routes = (
        ("POST", "/model/{model_id:.+}/converse"),
        ("POST", "/model/{model_id:.+}/converse-stream"),
    )
    content_type_stream = "application/vnd.amazon.eventstream"

    def __init__(self) -> None:
        super().__init__()
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.session_token: str | None = None
        self.region = REGION
        #: a Bedrock API key the server accepts as ``Authorization: Bearer``
        self.bearer_token: str | None = None
        #: when set, streamed responses send exactly these bytes (then end the body cleanly)
        self.raw_stream: list[bytes] | None = None
        self.rejections: list[str] = []

    # -- authentication and validation, before the scripted reply -----------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        rejected = self._authenticate(request.method, request.raw_path, headers, body)
        if rejected is not None:
            self.rejections.append(rejected[0])
            self.requests.append(
                RecordedRequest(request.method, request.path, dict(request.query), headers, body)
            )
            return web.Response(
                status=403,
                body=orjson.dumps({"message": rejected[1]}),
                headers={
                    "x-amzn-ErrorType": rejected[0] + _ERROR_SUFFIX,
                    "x-amzn-RequestId": REQUEST_ID,
                },
                content_type="application/json",
            )
        response = await super().handle(request)
        if isinstance(response, web.Response) and not response.prepared:
            response.headers["x-amzn-RequestId"] = REQUEST_ID
            if response.status >= 400 and isinstance(response.body, bytes):
                data = orjson.loads(response.body)
                error_type = data.pop("__type", None)
                if error_type:
                    response.headers["x-amzn-ErrorType"] = error_type + _ERROR_SUFFIX
                response.body = orjson.dumps(data)
        return response

    def _authenticate(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, str] | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            if self.bearer_token is not None and hmac.compare_digest(auth[7:], self.bearer_token):
                return None
            return (
                "UnrecognizedClientException",
                "Invalid API Key format: Must start with pre-defined prefix",
            )
        return verify_sigv4(
            method,
            raw_path,
            headers,
            body,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            token=self.session_token,
        )

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        """Converse's structural rules, as ValidationException."""
        data = request.json or {}
        messages = data.get("messages") or []
        if not messages or messages[0].get("role") != "user":
            return 400, _error_body(
                "ValidationException", "A conversation must start with a user message."
            )
        uses: set[str] = set()
        has_tool_blocks = False
        for i, message in enumerate(messages):
            if i and message.get("role") == messages[i - 1].get("role"):
                return 400, _error_body(
                    "ValidationException",
                    "A conversation must alternate between user and assistant roles.",
                )
            if not message.get("content"):
                return 400, _error_body(
                    "ValidationException", "The content field in the Message object is empty."
                )
            for block in message["content"]:
                if "toolUse" in block:
                    has_tool_blocks = True
                    uses.add(block["toolUse"]["toolUseId"])
                if "toolResult" in block:
                    has_tool_blocks = True
                    if block["toolResult"]["toolUseId"] not in uses:
                        return 400, _error_body(
                            "ValidationException",
                            "The toolResult blocks must match toolUse blocks in the previous turn.",
                        )
        if has_tool_blocks and not data.get("toolConfig"):
            return 400, _error_body(
                "ValidationException",
                "The toolConfig field must be defined when using toolUse and toolResult "
                "content blocks.",
            )
        return None

    # -- answers -----------------------------------------------------------------------------

    def is_stream(self, request: RecordedRequest) -> bool:
        return request.path.endswith("/converse-stream")

    def _usage(self, reply: Reply) -> dict[str, Any]:
        usage = {
            "inputTokens": reply.prompt_tokens - reply.cached_tokens,
            "outputTokens": reply.completion_tokens,
            "totalTokens": reply.prompt_tokens + reply.completion_tokens,
        }
        if reply.cached_tokens:
            usage["cacheReadInputTokens"] = reply.cached_tokens
        return usage

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        content: list[dict[str, Any]] = []
        if reply.thinking:
            text: dict[str, Any] = {"text": reply.thinking}
            if reply.thinking_signature:
                text["signature"] = reply.thinking_signature
            content.append({"reasoningContent": {"reasoningText": text}})
        if reply.text:
            content.append({"text": reply.text})
        for cid, name, args in reply.tool_calls:
            content.append({"toolUse": {"toolUseId": cid, "name": name, "input": args}})
        return orjson.dumps(
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": _STOP.get(reply.finish, reply.finish),
                "usage": self._usage(reply),
                "metrics": {"latencyMs": 312},
            }
        )

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        if self.raw_stream is not None:
            return list(self.raw_stream)
        events = [event("messageStart", {"role": "assistant"})]
        index = 0
        if reply.thinking:
            for piece in text_pieces(reply.thinking, reply.chunk_chars):
                events.append(
                    event(
                        "contentBlockDelta",
                        {
                            "contentBlockIndex": index,
                            "delta": {"reasoningContent": {"text": piece}},
                        },
                    )
                )
            if reply.thinking_signature:
                events.append(
                    event(
                        "contentBlockDelta",
                        {
                            "contentBlockIndex": index,
                            "delta": {"reasoningContent": {"signature": reply.thinking_signature}},
                        },
                    )
                )
            events.append(event("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        if reply.text:
            for piece in text_pieces(reply.text, reply.chunk_chars):
                events.append(
                    event(
                        "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
                    )
                )
            events.append(event("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        for cid, name, args in reply.tool_calls:
            events.append(
                event(
                    "contentBlockStart",
                    {
                        "contentBlockIndex": index,
                        "start": {"toolUse": {"toolUseId": cid, "name": name}},
                    },
                )
            )
            for piece in text_pieces(arguments_text(args), 5):
                events.append(
                    event(
                        "contentBlockDelta",
                        {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}},
                    )
                )
            events.append(event("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        events.append(event("messageStop", {"stopReason": _STOP.get(reply.finish, reply.finish)}))
        events.append(
            event("metadata", {"usage": self._usage(reply), "metrics": {"latencyMs": 312}})
        )
        return events

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        status, error_type, text = _ERRORS[reply.error or "server"]
        return status, _error_body(error_type, f"{text} ({reply.error_message})")

    def render_stream_error_event(self, reply: Reply) -> bytes:
        return exception_event(
            "modelStreamErrorException",
            {"message": reply.error_message, "originalStatusCode": 500, "originalMessage": "boom"},
        )

    def malformed_event(self) -> bytes:
        frame = bytearray(
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}})
        )
        frame[-6] ^= 0xFF  # a flipped payload byte: the message CRC no longer matches
        return bytes(frame)
