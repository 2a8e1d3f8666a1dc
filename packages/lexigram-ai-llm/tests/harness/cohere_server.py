"""A loopback server speaking Cohere's v2 chat API (shapes from cohere-ai/cohere-python ``v2``
types and the response examples of Cohere's API reference, ``snippets/responses/chat-v2-post``):
``POST /v2/chat``, typed ``event:``/``data:`` server-sent events ending with ``message-end``,
bearer authentication and ``{"id", "message"}`` error bodies with the documented statuses."""

from __future__ import annotations

from typing import Any

import orjson

from harness.conformance import SECRET
from harness.server import (
    FakeProviderServer,
    RecordedRequest,
    Reply,
    arguments_text,
    sse,
    text_pieces,
)

# kind: (status, message) as Cohere's errors reference lists them.
_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid request: temperature must be between 0 and 1.0 inclusive."),
    "auth": (401, "invalid api token"),
    "permission": (403, "Forbidden"),
    "quota": (
        402,
        "Please add or update your payment method at "
        "https://dashboard.cohere.com/billing?tab=payment to continue",
    ),
    "not_found": (
        404,
        "model '{model}' not found, make sure the correct model ID was used and that you have "
        "access to the model.",
    ),
    "rate_limit": (
        429,
        "You are past the per minute request limit, please wait and try again later.",
    ),
    "server": (500, "internal server error, this has been reported to our developers"),
    "overloaded": (503, "service unavailable"),
}

_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}

GENERATION_ID = "29f14a5a-11de-4cae-9800-25e4747408ea"
TOOL_PLAN = "I will look up the weather and the time."


class CohereServer(FakeProviderServer):
    routes = (("POST", "/v2/chat"),)

    def __init__(self) -> None:
        super().__init__()
        self.api_key = SECRET
        #: when set, streamed responses send exactly these bytes (then end the body cleanly)
        self.raw_stream: list[bytes] | None = None

    def is_stream(self, request: RecordedRequest) -> bool:
        return bool(request.json.get("stream"))

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        if request.headers.get("authorization", "").lower() != f"bearer {self.api_key}".lower():
            return 401, orjson.dumps({"id": GENERATION_ID, "message": "invalid api token"})
        return None

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "billed_units": {"input_tokens": 5, "output_tokens": reply.completion_tokens},
            "tokens": {
                "input_tokens": reply.prompt_tokens,
                "output_tokens": reply.completion_tokens,
            },
            "cached_tokens": reply.cached_tokens,
        }

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        content: list[dict[str, Any]] = []
        if reply.thinking:
            content.append({"type": "thinking", "thinking": reply.thinking})
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.tool_calls:
            if not reply.thinking:
                message["tool_plan"] = TOOL_PLAN
            message["tool_calls"] = [
                {
                    "id": cid,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments_text(args)},
                }
                for cid, name, args in reply.tool_calls
            ]
        return orjson.dumps(
            {
                "id": GENERATION_ID,
                "message": message,
                "finish_reason": _FINISH[reply.finish],
                "usage": self._usage(reply),
            }
        )

    @staticmethod
    def _event(payload: dict[str, Any]) -> bytes:
        return sse(payload, event=payload["type"])

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        if self.raw_stream is not None:
            return list(self.raw_stream)
        event = self._event
        events = [
            event(
                {
                    "id": GENERATION_ID,
                    "type": "message-start",
                    "delta": {
                        "message": {
                            "role": "assistant",
                            "content": [],
                            "tool_plan": "",
                            "tool_calls": [],
                            "citations": [],
                        }
                    },
                }
            )
        ]
        index = 0
        for kind, text in (("thinking", reply.thinking), ("text", reply.text)):
            if not text:
                continue
            events.append(
                event(
                    {
                        "type": "content-start",
                        "index": index,
                        "delta": {"message": {"content": {"type": kind, kind: ""}}},
                    }
                )
            )
            for piece in text_pieces(text, reply.chunk_chars):
                events.append(
                    event(
                        {
                            "type": "content-delta",
                            "index": index,
                            "delta": {"message": {"content": {kind: piece}}},
                        }
                    )
                )
            events.append(event({"type": "content-end", "index": index}))
            index += 1
        if reply.tool_calls and not reply.thinking:
            for piece in text_pieces(TOOL_PLAN, 8):
                events.append(
                    event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": piece}}})
                )
        for i, (cid, name, args) in enumerate(reply.tool_calls):
            events.append(
                event(
                    {
                        "type": "tool-call-start",
                        "index": i,
                        "delta": {
                            "message": {
                                "tool_calls": {
                                    "id": cid,
                                    "type": "function",
                                    "function": {"name": name, "arguments": ""},
                                }
                            }
                        },
                    }
                )
            )
            for piece in text_pieces(arguments_text(args), 5):
                events.append(
                    event(
                        {
                            "type": "tool-call-delta",
                            "index": i,
                            "delta": {
                                "message": {"tool_calls": {"function": {"arguments": piece}}}
                            },
                        }
                    )
                )
            events.append(event({"type": "tool-call-end", "index": i}))
        events.append(
            event(
                {
                    "type": "message-end",
                    "delta": {"finish_reason": _FINISH[reply.finish], "usage": self._usage(reply)},
                }
            )
        )
        return events

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        status, text = _ERRORS[reply.error or "server"]
        model = (request.json or {}).get("model", "")
        message = f"{text.format(model=model)} ({reply.error_message})"
        return status, orjson.dumps({"id": GENERATION_ID, "message": message})

    def render_stream_error_event(self, reply: Reply) -> bytes:
        return self._event(
            {
                "type": "message-end",
                "delta": {"error": reply.error_message, "finish_reason": "ERROR"},
            }
        )

    def malformed_event(self) -> bytes:
        return b"event: content-delta\ndata: {this is not json\n\n"
