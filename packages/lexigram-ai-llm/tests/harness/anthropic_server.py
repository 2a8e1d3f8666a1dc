"""A loopback server speaking the Anthropic Messages API.

Shapes follow the API reference and the official SDK's streaming fixtures
(``anthropic-sdk-python/tests/lib/streaming/fixtures``): a ``message`` object, the SSE sequence
``message_start`` → ``content_block_start``/``ping``/``content_block_delta``/``content_block_stop``
→ ``message_delta`` → ``message_stop``, and ``{"type": "error", "error": {...}, "request_id"}``
error bodies with the documented statuses (https://docs.anthropic.com/en/api/errors).
"""

from __future__ import annotations

from typing import Any

import orjson

from harness.conformance import SECRET
from harness.server import FakeProviderServer, RecordedRequest, Reply, sse, text_pieces

# kind: (status, error type) as Anthropic sends them. Anthropic has no distinct error for an
# over-long prompt (it is an ``invalid_request_error`` told apart only by its message) nor for
# content policy (a ``refusal`` stop reason in a 200), so those kinds are not rendered here.
ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "auth": (401, "authentication_error"),
    "permission": (403, "permission_error"),
    "quota": (402, "billing_error"),
    "not_found": (404, "not_found_error"),
    "rate_limit": (429, "rate_limit_error"),
    "server": (500, "api_error"),
    "overloaded": (529, "overloaded_error"),
    "request_too_large": (413, "request_too_large"),
    "timeout": (504, "timeout_error"),
}

ERROR_KINDS = tuple(k for k in ERRORS if k not in ("request_too_large", "timeout"))

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

DEFAULT_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


class AnthropicServer(FakeProviderServer):
    routes = (("POST", "/v1/messages"),)

    def __init__(self) -> None:
        super().__init__()
        #: opaque data of a ``redacted_thinking`` block put before the answer, when set
        self.redacted_thinking: str | None = None
        self.cache_creation_tokens = 0
        self.message_id = "msg_01XFDUDYJgAACzvnptvVoYEL"

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("authorization", "")
        if key is None and bearer.startswith("Bearer "):
            key = bearer[len("Bearer ") :]  # newer SDKs send the key as a bearer token
        if key is None:
            return 401, _error_body("authentication_error", "x-api-key header is required")
        if key != SECRET:
            return 401, _error_body("authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return 400, _error_body(
                "invalid_request_error", "anthropic-version: header is required"
            )
        return None

    def is_stream(self, request: RecordedRequest) -> bool:
        return bool(request.json.get("stream"))

    # -- answer content --------------------------------------------------------------------

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.redacted_thinking is not None:
            blocks.append({"type": "redacted_thinking", "data": self.redacted_thinking})
        if reply.thinking:
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": reply.thinking,
                    "signature": reply.thinking_signature or DEFAULT_SIGNATURE,
                }
            )
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for cid, name, args in reply.tool_calls:
            blocks.append({"type": "tool_use", "id": cid, "name": name, "input": args})
        return blocks

    def _usage(self, reply: Reply) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": reply.prompt_tokens - reply.cached_tokens - self.cache_creation_tokens,
            "cache_creation_input_tokens": self.cache_creation_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "output_tokens": reply.completion_tokens,
            "service_tier": "standard",
        }
        if reply.reasoning_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
        return usage

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        return orjson.dumps(
            {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": request.json["model"],
                "content": self._blocks(reply),
                "stop_reason": _STOP[reply.finish],
                "stop_sequence": None,
                "usage": self._usage(reply),
            }
        )

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        start_usage = {**self._usage(reply), "output_tokens": 1}
        start_usage.pop("output_tokens_details", None)
        events = [
            sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": self.message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": request.json["model"],
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
                "message_start",
            )
        ]
        for index, block in enumerate(self._blocks(reply)):
            kind = block["type"]
            if kind == "thinking":
                start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            elif kind == "text":
                start = {"type": "text", "text": ""}
            elif kind == "tool_use":
                start = {**block, "input": {}}
            else:
                start = block
            events.append(
                sse(
                    {"type": "content_block_start", "index": index, "content_block": start},
                    "content_block_start",
                )
            )
            first_delta = len(events) + 1
            if kind == "thinking":
                for piece in text_pieces(block["thinking"], reply.chunk_chars):
                    events.append(_delta(index, {"type": "thinking_delta", "thinking": piece}))
                events.append(
                    _delta(index, {"type": "signature_delta", "signature": block["signature"]})
                )
            elif kind == "text":
                for piece in text_pieces(block["text"], reply.chunk_chars):
                    events.append(_delta(index, {"type": "text_delta", "text": piece}))
            elif kind == "tool_use":
                raw = block["input"]  # a str is scripted raw argument text
                arguments = (
                    raw
                    if isinstance(raw, str)
                    else orjson.dumps(raw, option=orjson.OPT_INDENT_2).decode()
                )
                events.append(_delta(index, {"type": "input_json_delta", "partial_json": ""}))
                for piece in text_pieces(arguments, 5):
                    events.append(
                        _delta(index, {"type": "input_json_delta", "partial_json": piece})
                    )
            if index == 0:
                # Pings may come anywhere in the stream; here after the first delta.
                events.insert(first_delta, sse({"type": "ping"}, "ping"))
            events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        # As in the SDK fixtures: the final usage only restates the output side; the input
        # side was given in ``message_start``.
        end_usage: dict[str, Any] = {"output_tokens": reply.completion_tokens}
        if reply.reasoning_tokens:
            end_usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
        events.append(
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _STOP[reply.finish], "stop_sequence": None},
                    "usage": end_usage,
                },
                "message_delta",
            )
        )
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return events

    # -- failures --------------------------------------------------------------------------

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        status, kind = ERRORS[reply.error or "server"]
        return status, _error_body(kind, reply.error_message)

    def render_stream_error_event(self, reply: Reply) -> bytes:
        return sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        )

    def malformed_event(self) -> bytes:
        return b"event: content_block_delta\ndata: {this is not json\n\n"


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse(
        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
    )


def _error_body(kind: str, message: str) -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
    )
