"""The SSE and NDJSON framers: exact events for well-formed input however it is split, and
never a crash, a hang or a half event for arbitrary bytes (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lexigram.ai.llm._framing import NDJSONDecoder, SSEDecoder, SSEEvent
from lexigram.ai.llm.exceptions import ResponseLimitError
from lexigram.ai.llm.providers._thinktags import ThinkTagSplitter, split_think_tags


def feed_all(decoder: SSEDecoder, pieces: list[bytes]) -> list[SSEEvent]:
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.finish())
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def test_sse_fields_comments_and_multiline_data() -> None:
    body = (
        b": keep-alive\n"
        b"event: message_start\n"
        b"id: 7\n"
        b'data: {"a":\n'
        b"data: 1}\n"
        b"retry: 100\n"
        b"\n"
        b"data:no-space\r\n\r\n"
        b"data: [DONE]\n\n"
    )
    events = feed_all(SSEDecoder(), [body])
    assert events == [
        SSEEvent(b'{"a":\n1}', "message_start", "7"),
        SSEEvent(b"no-space", None, "7"),
        SSEEvent(b"[DONE]", None, "7"),
    ]


def test_sse_cut_mid_line_is_pending_and_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"x": 1}\n\ndata: {"y"') == [SSEEvent(b'{"x": 1}')]
    assert decoder.pending
    assert decoder.finish() == []


def test_sse_final_event_without_blank_line_is_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]\n") == []
    assert decoder.finish() == [SSEEvent(b"[DONE]")]


def test_sse_cr_line_ends_keep_the_final_event() -> None:
    # A lone \r is a line end; the one feed() holds back at the end of the body ends a line.
    assert feed_all(SSEDecoder(), [b"data: a\r\rdata: [DONE]\r\r"]) == [
        SSEEvent(b"a"),
        SSEEvent(b"[DONE]"),
    ]
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]\r") == []
    assert decoder.finish() == [SSEEvent(b"[DONE]")]


json_payloads = st.lists(
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.integers(min_value=-(2**53), max_value=2**53) | st.text(max_size=10),
        max_size=3,
    ),
    min_size=1,
    max_size=8,
)


_sse_lines = st.lists(
    st.sampled_from(
        [
            b"data: x",
            b"data: ",
            b"data:y",
            b"data: a\nb",
            b"event: delta",
            b"event: ",
            b"id: 9",
            b": ping",
            b"retry: 5",
            b"",
            b"data: [DONE]",
        ]
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(blocks=st.lists(_sse_lines, min_size=1, max_size=6), trailing=st.booleans())
def test_sse_whole_reads_give_the_events_of_byte_by_byte_reads(
    blocks: list[list[bytes]], trailing: bool
) -> None:
    # Reads that end on an event boundary take a shortcut for one-``data``-line events; it
    # must decode exactly what the line-by-line reading of the same bytes decodes.
    reads = [b"\n".join(lines) + b"\n\n" for lines in blocks]
    if trailing:
        reads.append(b"data: tail")
    fast = feed_all(SSEDecoder(), reads)
    body = b"".join(reads)
    slow = feed_all(SSEDecoder(), [body[i : i + 1] for i in range(len(body))])
    assert fast == slow


def test_sse_whole_events_in_one_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 4\n\n") == []
    read = b'event: message_start\ndata: {"a": 1}\n\ndata: [DONE]\n\n'
    assert decoder.feed(read) == [
        SSEEvent(b'{"a": 1}', "message_start", "4"),
        SSEEvent(b"[DONE]", None, "4"),
    ]
    assert not decoder.pending


def test_sse_whole_read_over_the_line_limit_is_refused() -> None:
    with pytest.raises(ResponseLimitError):
        SSEDecoder(max_line=8).feed(b"data: " + b"x" * 9 + b"\n\n")


@settings(max_examples=200, deadline=None)
@given(
    payloads=json_payloads, cuts=st.lists(st.integers(min_value=0), max_size=12), crlf=st.booleans()
)
def test_sse_any_split_gives_the_same_events(
    payloads: list[dict[str, object]], cuts: list[int], crlf: bool
) -> None:
    import orjson

    newline = b"\r\n" if crlf else b"\n"
    body = b"".join(b"data: " + orjson.dumps(p) + newline + newline for p in payloads)
    events = feed_all(SSEDecoder(), split_at(body, cuts))
    assert [orjson.loads(e.data) for e in events] == payloads


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_sse_arbitrary_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    whole = feed_all(SSEDecoder(), [data])
    pieces = feed_all(SSEDecoder(), split_at(data, cuts))
    assert whole == pieces  # splitting never changes what comes out
    for event in whole:
        assert isinstance(event.data, bytes)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.binary(min_size=1, max_size=30).filter(lambda b: b"\n" not in b and b.strip()),
        max_size=10,
    ),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_ndjson_any_split_gives_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    body = b"".join(line + b"\n" for line in lines)
    decoder = NDJSONDecoder()
    out: list[bytes] = []
    for piece in split_at(body, cuts):
        out.extend(decoder.feed(piece))
    assert not decoder.pending
    out.extend(decoder.finish())
    assert out == lines


def test_ndjson_cut_mid_line_is_pending() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert decoder.pending
    assert decoder.finish() == [b'{"b"']


def test_think_tags_split_whole_text() -> None:
    assert split_think_tags("<think>reason</think>\nanswer") == ("answer", "reason")
    assert split_think_tags("plain answer") == ("plain answer", "")
    assert split_think_tags("answer with <think>late</think>") == (
        "answer with <think>late</think>",
        "",
    )


@settings(max_examples=200, deadline=None)
@given(
    thinking=st.text(max_size=40).filter(lambda t: "<" not in t),
    answer=st.text(max_size=40).filter(lambda t: "<" not in t and not t.startswith("\n")),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_think_tags_streamed_in_any_pieces(thinking: str, answer: str, cuts: list[int]) -> None:
    text = f"<think>{thinking}</think>{answer}"
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(text[last:p])
        last = p
    pieces.append(text[last:])
    splitter = ThinkTagSplitter()
    got_answer, got_thinking = "", ""
    for piece in pieces:
        a, t = splitter.feed(piece)
        got_answer += a
        got_thinking += t
    a, t = splitter.flush()
    assert (got_answer + a, got_thinking + t) == (answer, thinking)
