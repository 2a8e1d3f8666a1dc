"""The local provider's pieces that need no model: the repetition guard that ends a looping
answer, and how load options (threads, batch size) come from the configuration."""

from __future__ import annotations

import itertools

import pytest

from lexigram.ai.llm import ClientConfig
from lexigram.ai.llm.exceptions import ConfigurationError
from lexigram.ai.llm.providers.local import (
    DEFAULT_BATCH,
    REPETITION_MIN_TOKENS,
    LoadOptions,
    RepetitionGuard,
    default_threads,
)


def first_loop_at(tokens: list[int]) -> int | None:
    """The 1-based count of tokens fed when the guard first says "loop", or None."""
    guard = RepetitionGuard()
    for count, token in enumerate(tokens, 1):
        if guard.feed(token):
            return count
    return None


# -- the repetition guard ------------------------------------------------------------------


def test_one_token_repeated_is_a_loop_once_it_spans_min_tokens() -> None:
    assert first_loop_at([5] * 100) == REPETITION_MIN_TOKENS


def test_a_repeated_phrase_is_a_loop_after_three_copies() -> None:
    intro = list(range(100, 120))
    phrase = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]  # "le Grand Croix de la femme de France,"
    tokens = intro + phrase * 10
    assert first_loop_at(tokens) == len(intro) + 3 * len(phrase)


def test_a_long_block_repeated_is_a_loop_after_three_copies() -> None:
    block = list(range(1000, 1060))  # 60 tokens: a whole sentence or two
    assert first_loop_at(block * 5) == 3 * len(block)


def test_text_that_does_not_repeat_is_never_a_loop() -> None:
    assert first_loop_at(list(range(2000))) is None
    # Repeats shorter than the thresholds are ordinary text: "ha ha ha", a short list.
    assert first_loop_at([7, 8] * 10 + list(range(50, 90))) is None
    assert first_loop_at([1, 2, 3, 4, 5] * 2 + list(range(50, 90))) is None
    # The same phrase twice, separated by other words (a refrain), is not a loop.
    refrain = list(range(300, 320))
    assert first_loop_at(refrain + list(range(400, 430)) + refrain + list(range(500, 530))) is None


def test_two_copies_of_a_long_block_are_not_yet_a_loop() -> None:
    block = list(range(1000, 1040))
    assert first_loop_at(block * 2 + list(range(9000, 9100))) is None


def test_a_block_longer_than_the_longest_period_is_not_seen() -> None:
    block = list(range(1000, 1100))  # 100 tokens: beyond REPETITION_MAX_PERIOD (64)
    assert first_loop_at(block * 3) is None
    wide = RepetitionGuard(max_period=128)
    assert any(wide.feed(t) for t in block * 3)


def test_each_guard_starts_fresh() -> None:
    guard = RepetitionGuard()
    assert not any(guard.feed(t) for t in [5] * (REPETITION_MIN_TOKENS - 1))
    fresh = RepetitionGuard()
    assert not any(fresh.feed(t) for t in itertools.repeat(5, REPETITION_MIN_TOKENS - 1))
    assert guard.feed(5)


# -- load options --------------------------------------------------------------------------


def test_n_threads_sets_generation_and_prompt_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEX_AI_LLM__EXTRA__N_THREADS", raising=False)
    options = LoadOptions.from_config(ClientConfig(provider="local", extra={"n_threads": 1}))
    kwargs = options.llama_kwargs()
    assert (kwargs["n_threads"], kwargs["n_threads_batch"]) == (1, 1)
    assert (kwargs["n_batch"], kwargs["n_ubatch"]) == (DEFAULT_BATCH, DEFAULT_BATCH)


def test_the_environment_forces_the_thread_count_under_explicit_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What CI does to run the suite with one thread: the variable reaches every ClientConfig a
    # test builds, even one with its own extra options.
    monkeypatch.setenv("LEX_AI_LLM__EXTRA__N_THREADS", "1")
    monkeypatch.setenv("LEX_AI_LLM__EXTRA__N_BATCH", "8")
    config = ClientConfig(provider="local", temperature=0.0, extra={"system_prompt": ""})
    options = LoadOptions.from_config(config)
    assert (options.n_threads, options.n_batch) == (1, 8)
    assert options.llama_kwargs()["n_threads_batch"] == 1
    assert config.extra["system_prompt"] == ""


def test_no_thread_count_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEX_AI_LLM__EXTRA__N_THREADS", raising=False)
    kwargs = LoadOptions.from_config(ClientConfig(provider="local")).llama_kwargs()
    assert kwargs["n_threads"] == kwargs["n_threads_batch"] == default_threads()
    assert 1 <= default_threads() <= 2


@pytest.mark.parametrize("extra", [{"n_threads": "many"}, {"n_threads": -1}, {"n_batch": 0}])
def test_bad_thread_or_batch_values_are_configuration_errors(extra: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="n_threads"):
        LoadOptions.from_config(ClientConfig(provider="local", extra=extra))
