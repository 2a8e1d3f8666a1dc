"""A loopback server speaking OpenAI Chat Completions (shapes from the API reference:
``chat.completion``, ``chat.completion.chunk``, ``data: [DONE]``, ``{"error": {...}}``)."""

from __future__ import annotations

from typing import Any

import orjson

from harness.server import (
    FakeProviderServer,
    RecordedRequest,
    Reply,
    arguments_text,
    sse,
    text_pieces,
)

_ERRORS: dict[str, tuple[int, str, str | None]] = {
    # kind: (status, type, code) as OpenAI sends them
    "invalid_request": (400, "invalid_request_error", None),
    "context_length": (400, "invalid_request_error", "context_length_exceeded"),
    "content_filter": (400, "invalid_request_error", "content_filter"),
    "auth": (401, "invalid_request_error", "invalid_api_key"),
    "permission": (403, "invalid_request_error", "unsupported_country_region_territory"),
    "quota": (429, "insufficient_quota", "insufficient_quota"),
    "not_found": (404, "invalid_request_error", "model_not_found"),
    "rate_limit": (429, "requests", "rate_limit_exceeded"),
    "server": (500, "server_error", None),
    "overloaded": (503, "server_error", None),
}

_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIServer(FakeProviderServer):
    routes = (
        ("POST", "/v1/chat/completions"),
        ("POST", "/openai/deployments/{deployment}/chat/completions"),  # Azure OpenAI
    )
    reasoning_field = "reasoning_content"
    #: Mistral-style hosts put usage on the finishing chunk instead of a separate one.
    usage_on_finish_chunk = False

    def is_stream(self, request: RecordedRequest) -> bool:
        return bool(request.json.get("stream"))

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.thinking:
            message[self.reasoning_field] = reply.thinking
        if reply.tool_calls:
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
                "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
                "object": "chat.completion",
                "created": 1741569952,
                "model": request.json["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": _FINISH[reply.finish],
                    }
                ],
                "usage": self._usage(reply),
                "service_tier": "default",
                "system_fingerprint": "fp_fc9f1d7035",
            }
        )

    def _chunk(
        self,
        request: RecordedRequest,
        delta: dict[str, Any],
        finish: str | None = None,
        usage: Any = None,
        choices: bool = True,
    ) -> bytes:
        payload: dict[str, Any] = {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": request.json["model"],
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            if choices
            else [],
        }
        if usage is not None or request.json.get("stream_options"):
            payload["usage"] = usage
        return sse(payload)

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        events = [self._chunk(request, {"role": "assistant", "content": "", "refusal": None})]
        for piece in text_pieces(reply.thinking, reply.chunk_chars):
            events.append(self._chunk(request, {self.reasoning_field: piece}))
        for piece in text_pieces(reply.text, reply.chunk_chars):
            events.append(self._chunk(request, {"content": piece}))
        for index, (cid, name, args) in enumerate(reply.tool_calls):
            arguments = arguments_text(args)
            events.append(
                self._chunk(
                    request,
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": cid,
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    },
                )
            )
            for piece in text_pieces(arguments, 5):
                events.append(
                    self._chunk(
                        request,
                        {"tool_calls": [{"index": index, "function": {"arguments": piece}}]},
                    )
                )
        if self.usage_on_finish_chunk:
            events.append(self._chunk(request, {}, _FINISH[reply.finish], usage=self._usage(reply)))
        else:
            events.append(self._chunk(request, {}, _FINISH[reply.finish]))
        if (request.json.get("stream_options") or {}).get("include_usage"):
            events.append(self._chunk(request, {}, usage=self._usage(reply), choices=False))
        events.append(b"data: [DONE]\n\n")
        return events

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        status, kind, code = _ERRORS[reply.error or "server"]
        return status, orjson.dumps(
            {"error": {"message": reply.error_message, "type": kind, "param": None, "code": code}}
        )

    def render_stream_error_event(self, reply: Reply) -> bytes:
        return sse(
            {
                "error": {
                    "message": reply.error_message,
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )


class MistralServer(OpenAIServer):
    """Mistral: no ``stream_options``; usage rides on the last chunk."""

    usage_on_finish_chunk = True

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        if "stream_options" in (request.json or {}):
            return 422, orjson.dumps(
                {
                    "object": "error",
                    "message": "stream_options not permitted",
                    "type": "invalid_request_error",
                    "code": None,
                }
            )
        return None


class OpenRouterServer(OpenAIServer):
    """OpenRouter sends reasoning in ``reasoning``."""

    reasoning_field = "reasoning"
