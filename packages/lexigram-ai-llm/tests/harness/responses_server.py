"""A loopback server speaking the OpenAI Responses API (``POST /v1/responses``).

Shapes follow the API reference and the official SDK's ``types/responses`` (``Response``,
``ResponseOutputItem``, ``ResponseStreamEvent``): a ``response`` object whose ``output`` holds
``reasoning``, ``message`` and ``function_call`` items; the SSE sequence ``response.created`` →
``response.in_progress`` → per item ``response.output_item.added`` / part and delta events /
``response.output_item.done`` → ``response.completed`` (or ``response.incomplete``), every
event with ``event: <type>`` and a ``sequence_number``; errors as ``{"error": {...}}`` bodies
(the same as Chat Completions) and, mid-stream, an ``error`` event or ``response.failed``.

A reasoning item carries ``encrypted_content`` only when the request asked for it with
``include: ["reasoning.encrypted_content"]``, as the API does.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from harness.openai_server import _ERRORS
from harness.server import (
    FakeProviderServer,
    RecordedRequest,
    Reply,
    arguments_text,
    sse,
    text_pieces,
)

DEFAULT_ENCRYPTED = "gAAAAABoISQ2ZkF6Nw8N2l1fM8VQe0r8o2pYq3s-encrypted-reasoning-0123456789=="

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ResponsesServer(FakeProviderServer):
    routes = (
        ("POST", "/v1/responses"),
        ("POST", "/openai/v1/responses"),  # Azure OpenAI v1 API
    )

    def __init__(self) -> None:
        super().__init__()
        self.response_id = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
        #: a refusal message item instead of the answer text, when set
        self.refusal: str | None = None
        #: stream events sent right after ``response.in_progress`` (events we must ignore)
        self.extra_events: list[bytes] = []
        #: mid-stream failure as ``response.failed`` instead of an ``error`` event
        self.fail_with_response_failed = False

    def is_stream(self, request: RecordedRequest) -> bool:
        return bool(request.json.get("stream"))

    # -- the response object ---------------------------------------------------------------

    def responses_usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens,
            "input_tokens_details": {"cached_tokens": reply.cached_tokens},
            "output_tokens": reply.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }

    def output_items(self, reply: Reply, request: RecordedRequest) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        # Ids follow the content: the same reply gets the same ids, streamed or not.
        turn = zlib.crc32(f"{reply.thinking}|{reply.text}|{reply.tool_calls}".encode())
        if reply.thinking:
            item: dict[str, Any] = {
                "id": f"rs_6820f383d7c08191846711c5df8233bc{turn:010d}",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": reply.thinking}],
            }
            if "reasoning.encrypted_content" in (request.json.get("include") or ()):
                item["encrypted_content"] = reply.thinking_signature or DEFAULT_ENCRYPTED
            items.append(item)
        if self.refusal is not None:
            content: list[dict[str, Any]] = [{"type": "refusal", "refusal": self.refusal}]
            items.append(self._message(content, turn))
        elif reply.text:
            content = [
                {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
            ]
            items.append(self._message(content, turn))
        for index, (cid, name, args) in enumerate(reply.tool_calls):
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_67ca09c6bedc8190a7abfec07b1a1332096610f474011cc{index}",
                    "call_id": cid,
                    "name": name,
                    "arguments": arguments_text(args),
                    "status": "completed",
                }
            )
        return items

    def _message(self, content: list[dict[str, Any]], turn: int) -> dict[str, Any]:
        return {
            "type": "message",
            "id": f"msg_67ccd3acc8d48190a77525dc6de64b41{turn:010d}",
            "status": "completed",
            "role": "assistant",
            "content": content,
        }

    def response_object(
        self, reply: Reply, request: RecordedRequest, *, done: bool = True
    ) -> dict[str, Any]:
        body = request.json
        incomplete = _INCOMPLETE.get(reply.finish) if done else None
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": 1741476542,
            "status": ("incomplete" if incomplete else "completed") if done else "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"] + "-2025-08-07",
            "output": self.output_items(reply, request) if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": "medium", "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": 1.0,
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": self.responses_usage(reply) if done else None,
            "user": None,
            "metadata": {},
        }

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        return orjson.dumps(self.response_object(reply, request))

    # -- the stream ------------------------------------------------------------------------

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        events: list[bytes] = []
        sequence = iter(range(10_000))

        def emit(kind: str, *, glued: bool = False, **fields: Any) -> None:
            event = sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)
            if glued:
                events[-1] += event
            else:
                events.append(event)

        # Events the API sends back to back share one write (the response preamble; an item's
        # ``added`` and its first part's), so the Nth write of a text answer carries text.
        emit("response.created", response=self.response_object(reply, request, done=False))
        emit(
            "response.in_progress",
            response=self.response_object(reply, request, done=False),
            glued=True,
        )
        events.extend(self.extra_events)
        for index, item in enumerate(self.output_items(reply, request)):
            kind = item["type"]
            at = {"output_index": index}
            item_at = {"item_id": item["id"], **at}
            if kind == "reasoning":
                emit("response.output_item.added", item={**item, "summary": []}, **at)
                for s_index, part in enumerate(item["summary"]):
                    empty = {"type": "summary_text", "text": ""}
                    emit(
                        "response.reasoning_summary_part.added",
                        summary_index=s_index,
                        part=empty,
                        glued=s_index == 0,
                        **item_at,
                    )
                    for piece in text_pieces(part["text"], reply.chunk_chars):
                        emit(
                            "response.reasoning_summary_text.delta",
                            summary_index=s_index,
                            delta=piece,
                            **item_at,
                        )
                    emit(
                        "response.reasoning_summary_text.done",
                        summary_index=s_index,
                        text=part["text"],
                        **item_at,
                    )
                    emit(
                        "response.reasoning_summary_part.done",
                        summary_index=s_index,
                        part=part,
                        **item_at,
                    )
            elif kind == "message":
                emit(
                    "response.output_item.added",
                    item={**item, "status": "in_progress", "content": []},
                    **at,
                )
                for c_index, part in enumerate(item["content"]):
                    if part["type"] == "refusal":
                        empty = {"type": "refusal", "refusal": ""}
                        text = part["refusal"]
                        delta_kind, done_kind, done_field = (
                            "response.refusal.delta",
                            "response.refusal.done",
                            "refusal",
                        )
                    else:
                        empty = {"type": "output_text", "text": "", "annotations": []}
                        text = part["text"]
                        delta_kind, done_kind, done_field = (
                            "response.output_text.delta",
                            "response.output_text.done",
                            "text",
                        )
                    emit(
                        "response.content_part.added",
                        content_index=c_index,
                        part=empty,
                        glued=c_index == 0,
                        **item_at,
                    )
                    for piece in text_pieces(text, reply.chunk_chars):
                        extra = {"logprobs": []} if part["type"] == "output_text" else {}
                        emit(delta_kind, content_index=c_index, delta=piece, **extra, **item_at)
                    emit(done_kind, content_index=c_index, **{done_field: text}, **item_at)
                    emit("response.content_part.done", content_index=c_index, part=part, **item_at)
            elif kind == "function_call":
                emit(
                    "response.output_item.added",
                    item={**item, "arguments": "", "status": "in_progress"},
                    **at,
                )
                for piece in text_pieces(item["arguments"], 5):
                    emit("response.function_call_arguments.delta", delta=piece, **item_at)
                emit(
                    "response.function_call_arguments.done",
                    arguments=item["arguments"],
                    **item_at,
                )
            emit("response.output_item.done", item=item, **at)
        final = self.response_object(reply, request)
        terminal = (
            "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        )
        emit(terminal, response=final)
        return events

    # -- failures --------------------------------------------------------------------------

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        status, kind, code = _ERRORS[reply.error or "server"]
        return status, orjson.dumps(
            {"error": {"message": reply.error_message, "type": kind, "param": None, "code": code}}
        )

    def render_stream_error_event(self, reply: Reply) -> bytes:
        if self.fail_with_response_failed:
            response = {
                "id": self.response_id,
                "object": "response",
                "status": "failed",
                "error": {"code": "server_error", "message": reply.error_message},
                "output": [],
            }
            return sse(
                {"type": "response.failed", "sequence_number": 99, "response": response},
                "response.failed",
            )
        return sse(
            {
                "type": "error",
                "code": "server_error",
                "message": reply.error_message,
                "param": None,
                "sequence_number": 99,
            },
            "error",
        )

    def malformed_event(self) -> bytes:
        return b"event: response.output_text.delta\ndata: {this is not json\n\n"
