"""A loopback server speaking Ollama's native chat API (shapes from ollama/ollama
``docs/api.md``, ``docs/api/errors.mdx`` and ``server/routes.go``): ``POST /api/chat``, one
JSON object per line when streaming (``application/x-ndjson``), the last with ``"done": true``,
and ``{"error": "..."}`` bodies."""

from __future__ import annotations

from typing import Any

import orjson

from harness.server import FakeProviderServer, RecordedRequest, Reply, text_pieces

# kind: (status, message) as Ollama's routes answer them.
_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid options"),
    "auth": (401, "unauthorized"),
    "permission": (403, "remote inference is unavailable"),
    "not_found": (404, "model '{model}' not found"),
    "rate_limit": (429, "too many requests"),
    "server": (500, "llama runner process has terminated: exit status 2"),
    "overloaded": (503, "server busy, please try again.  maximum pending requests exceeded"),
}

_DONE_REASON = {"stop": "stop", "length": "length", "tool_calls": "stop"}

CREATED_AT = "2025-07-07T20:22:19.184789Z"


class OllamaServer(FakeProviderServer):
    routes = (("POST", "/api/chat"),)
    content_type_stream = "application/x-ndjson"

    def __init__(self) -> None:
        super().__init__()
        #: when set, streamed responses send exactly these bytes (then end the body cleanly)
        self.raw_stream: list[bytes] | None = None

    def is_stream(self, request: RecordedRequest) -> bool:
        # Ollama streams unless told not to.
        return bool(request.json.get("stream", True))

    def _message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.thinking:
            message["thinking"] = reply.thinking
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "function": {"index": i, "name": name, "arguments": args}}
                for i, (cid, name, args) in enumerate(reply.tool_calls)
            ]
        return message

    def _final(
        self, reply: Reply, request: RecordedRequest, message: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "model": request.json["model"],
            "created_at": CREATED_AT,
            "message": message,
            "done_reason": _DONE_REASON[reply.finish],
            "done": True,
            "total_duration": 182242375,
            "load_duration": 41295167,
            "prompt_eval_count": reply.prompt_tokens,
            "prompt_eval_duration": 24573166,
            "eval_count": reply.completion_tokens,
            "eval_duration": 115959084,
        }

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        return orjson.dumps(self._final(reply, request, self._message(reply)))

    def _line(self, request: RecordedRequest, message: dict[str, Any]) -> bytes:
        return (
            orjson.dumps(
                {
                    "model": request.json["model"],
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", **message},
                    "done": False,
                }
            )
            + b"\n"
        )

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        if self.raw_stream is not None:
            return list(self.raw_stream)
        lines = []
        for piece in text_pieces(reply.thinking, reply.chunk_chars):
            lines.append(self._line(request, {"content": "", "thinking": piece}))
        for piece in text_pieces(reply.text, reply.chunk_chars):
            lines.append(self._line(request, {"content": piece}))
        if reply.tool_calls:
            # Ollama sends each tool call whole, arguments as an object.
            lines.append(
                self._line(
                    request, {"content": "", "tool_calls": self._message(reply)["tool_calls"]}
                )
            )
        final = self._final(reply, request, {"role": "assistant", "content": ""})
        lines.append(orjson.dumps(final) + b"\n")
        return lines

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        status, text = _ERRORS[reply.error or "server"]
        model = (request.json or {}).get("model", "")
        message = f"{text.format(model=model)}: {reply.error_message}"
        return status, orjson.dumps({"error": message})

    def render_stream_error_event(self, reply: Reply) -> bytes:
        return orjson.dumps({"error": reply.error_message}) + b"\n"

    def malformed_event(self) -> bytes:
        return b'{"model": "x", "message": {"content": "oops\n'
