"""Pre-serialised provider answers: built once, so the fake server only copies bytes.

Shapes follow the providers' API references: OpenAI ``chat.completion`` and
``chat.completion.chunk`` events ending in ``data: [DONE]``; Anthropic ``message`` and the
``message_start`` ... ``message_stop`` event sequence; an OpenAI Responses ``response`` and its
``response.created`` ... ``response.completed`` events. The official SDKs, which parse every one
of them during a run, are the check that the shapes are right.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

__all__ = [
    "ANSWER_PIECES",
    "ANSWER_TEXT",
    "ANTHROPIC_MODEL",
    "HOLD_MODEL",
    "OPENAI_MODEL",
    "PROMPT",
    "WirePayloads",
    "anthropic_payloads",
    "openai_payloads",
    "responses_payloads",
]

#: Real model names, so that every client takes the path a user's call takes (our client looks
#: the model up for its context window and price). Answers name the dated snapshot, as the
#: providers do.
OPENAI_MODEL = "gpt-4o-mini"
OPENAI_ANSWER_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-haiku-4-5"
ANTHROPIC_ANSWER_MODEL = "claude-haiku-4-5-20251001"
#: The model name that asks the server to hold a stream open after its first content chunk.
HOLD_MODEL = "bench-hold"

PROMPT = [
    {"role": "system", "content": "You are a concise assistant. Answer in plain prose."},
    {"role": "user", "content": "Explain in one paragraph why connection pooling matters."},
]

_PROSE = (
    "Connection pooling keeps a small set of open sockets ready so that each request can skip "
    "the handshake and go straight to the server, which saves round trips, CPU and memory on "
    "both ends while keeping latency steady under load; without it every call pays for DNS, TCP "
    "and TLS again, and a busy client spends more time opening doors than walking through them, "
    "so throughput falls and tail latency rises exactly when traffic is highest and the margin "
    "is thinnest for everyone involved in serving the answer back to the user who is waiting "
    "patiently on the other side of the wire for a reply that should have been quick."
)
_WORDS = _PROSE.split(" ")

#: One streamed content delta per word (a word is about one token), ~100 deltas.
ANSWER_PIECES: tuple[str, ...] = tuple(w if i == 0 else " " + w for i, w in enumerate(_WORDS))
ANSWER_TEXT = "".join(ANSWER_PIECES)

PROMPT_TOKENS = 31
COMPLETION_TOKENS = len(ANSWER_PIECES)


@dataclass(frozen=True, slots=True)
class WirePayloads:
    """One wire family's answer: the JSON body and the SSE events (each a complete event)."""

    body: bytes
    #: Events before the first content delta (sent at once with the first delta).
    head: tuple[bytes, ...]
    #: One event per content delta.
    deltas: tuple[bytes, ...]
    #: Events after the last delta (finish, usage, terminal).
    tail: tuple[bytes, ...]


def _sse(payload: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def openai_payloads(model: str = OPENAI_ANSWER_MODEL) -> WirePayloads:
    """Chat Completions: non-stream body and stream events (with ``include_usage``)."""
    cid = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    created = 1741569952
    fingerprint = "fp_fc9f1d7035"
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    body = orjson.dumps(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": ANSWER_TEXT,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": fingerprint,
        }
    )

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        return _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": fingerprint,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                "usage": None,
            }
        )

    usage_chunk = _sse(
        {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": fingerprint,
            "choices": [],
            "usage": usage,
        }
    )
    return WirePayloads(
        body=body,
        head=(chunk({"role": "assistant", "content": "", "refusal": None}),),
        deltas=tuple(chunk({"content": piece}) for piece in ANSWER_PIECES),
        tail=(chunk({}, "stop"), usage_chunk, b"data: [DONE]\n\n"),
    )


def anthropic_payloads(model: str = ANTHROPIC_ANSWER_MODEL) -> WirePayloads:
    """Messages API: non-stream body and the stream's event sequence."""
    mid = "msg_01XFDUDYJgAACzvnptvVoYEL"
    body = orjson.dumps(
        {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": ANSWER_TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": PROMPT_TOKENS,
                "output_tokens": COMPLETION_TOKENS,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
    )
    start = {
        "type": "message_start",
        "message": {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": PROMPT_TOKENS,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
    }
    return WirePayloads(
        body=body,
        head=(
            _sse(start, "message_start"),
            _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            _sse({"type": "ping"}, "ping"),
        ),
        deltas=tuple(
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
                "content_block_delta",
            )
            for piece in ANSWER_PIECES
        ),
        tail=(
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": COMPLETION_TOKENS},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ),
    )


def responses_payloads(model: str = OPENAI_ANSWER_MODEL) -> WirePayloads:
    """Responses API: a ``response`` object and its stream (``sequence_number`` in order)."""
    rid = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    mid = "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c95c0"
    usage = {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    part = {"type": "output_text", "text": ANSWER_TEXT, "annotations": [], "logprobs": []}
    item = {"type": "message", "id": mid, "status": "completed", "role": "assistant"}

    def response(status: str) -> dict[str, object]:
        done = status == "completed"
        return {
            "id": rid,
            "object": "response",
            "created_at": 1741476542,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": model,
            "output": [{**item, "content": [part]}] if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage if done else None,
            "metadata": {},
        }

    sequence = iter(range(1_000))

    def event(kind: str, **fields: object) -> bytes:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    at = {"item_id": mid, "output_index": 0, "content_index": 0}
    head = (
        event("response.created", response=response("in_progress")),
        event("response.in_progress", response=response("in_progress")),
        event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        ),
        event("response.content_part.added", part={**part, "text": ""}, **at),
    )
    deltas = tuple(
        event("response.output_text.delta", delta=piece, logprobs=[], **at)
        for piece in ANSWER_PIECES
    )
    tail = (
        event("response.output_text.done", text=ANSWER_TEXT, logprobs=[], **at),
        event("response.content_part.done", part=part, **at),
        event("response.output_item.done", output_index=0, item={**item, "content": [part]}),
        event("response.completed", response=response("completed")),
    )
    return WirePayloads(
        body=orjson.dumps(response("completed")), head=head, deltas=deltas, tail=tail
    )
