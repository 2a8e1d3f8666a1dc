"""Model prices and context windows, from a dated data file the user can replace.

The bundled table is ``lexigram/ai/llm/data/models.json`` (its ``as_of`` date and ``sources``
say where the numbers come from). Replace it with the ``LEXIGRAM_MODEL_TABLE`` environment
variable (a path to a file of the same shape) or ``set_model_table(...)``; add or override one
model with ``model_table().register(...)``. A file with ``"extends": "bundled"`` is merged over
the bundled table instead of replacing it.

Lookups accept what providers send back: dated snapshots (``gpt-4o-2024-08-06``), provider
prefixes (``openai/gpt-4o-mini``, ``models/gemini-2.5-flash``), Bedrock ids
(``us.anthropic.claude-3-5-sonnet-20240620-v1:0``) and Vertex ids (``claude-sonnet-4@20250514``).
A suffix is only ignored when it looks like a version, so ``o1-pro`` is never priced as ``o1``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from lexigram.ai.llm.exceptions import ConfigurationError, UnsupportedCapabilityError
from lexigram.ai.llm.types import ChatRequest, DocumentPart, ImageDataPart, ImageURLPart, Usage

__all__ = [
    "CAPABILITIES",
    "ENV_VAR",
    "CostEstimate",
    "ModelInfo",
    "ModelTable",
    "UnknownModelError",
    "context_window_for",
    "estimate_cost",
    "lookup_model",
    "missing_capability",
    "model_table",
    "request_capabilities",
    "set_model_table",
    "unsupported_capability",
    "usage_cost",
]

ENV_VAR = "LEXIGRAM_MODEL_TABLE"

#: What a model may or may not take, in the order a refusal names the first one missing.
#: ``vision``: image inputs; ``audio``: audio inputs; ``pdf``: PDF documents; ``tools``:
#: function tools; ``json_schema``: a JSON-schema response format; ``reasoning``: thinking.
CAPABILITIES = ("vision", "audio", "pdf", "tools", "json_schema", "reasoning")
_PER = 1_000_000.0

# What may follow a known model name and still be the same model: dates, ``latest``, version
# tags (``-v1:0``, ``-002``, ``-0613``, ``@20240620``). Anything else, a bare ``-5`` included, is
# a different model (``claude-opus-4-5`` is not ``claude-opus-4``).
_VERSION_SUFFIX = re.compile(
    r"^(?:[-@:_](?:\d{4}-\d{2}-\d{2}|\d{2}-\d{4}|\d{3,8}|latest|v\d+(?::\d+)?))+$"
)


class UnknownModelError(LookupError):
    """No price or context window is known for a model; the message says how to add one."""


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """What a call of a given size costs: ``input_cost`` (prompt tokens, cached and cache-write
    ones at their own prices), ``output_cost`` and ``total_cost``, in ``currency``.

    ``as_of`` and ``source`` say which price list the numbers come from (the table's date and
    the provider's pricing page), as far as the table knows; ``model`` is the table entry
    whose price was used. ``float(estimate)`` is the total.
    """

    model: str
    input_cost: float
    output_cost: float
    total_cost: float
    currency: str = "USD"
    as_of: str | None = None
    source: str | None = None

    def __float__(self) -> float:
        return self.total_cost


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices (USD per million tokens) for a call whose prompt is over ``above`` tokens: the
    whole call is billed at them, as Gemini bills prompts over 200k tokens."""

    above: int
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the table knows about one model. Prices are USD per million tokens.

    ``wire`` names the API a model is served on when its provider has several (``"responses"``
    for OpenAI models that exist only on the Responses API); ``None`` is the provider's usual
    one."""

    name: str
    provider: str | None = None
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    wire: str | None = None
    # Long-context prices, lowest ``above`` first; a prompt over a tier's threshold is billed
    # entirely at that tier's prices.
    tiers: tuple[PriceTier, ...] = ()
    # Capabilities (see ``CAPABILITIES``): ``True`` the model has it, ``False`` the table knows
    # it lacks it (requests needing it are refused before sending), ``None`` unknown (allowed).
    vision: bool | None = None
    audio: bool | None = None
    pdf: bool | None = None
    tools: bool | None = None
    json_schema: bool | None = None
    reasoning: bool | None = None
    # A coarse quality tier, 1 (small, basic) to 5 (frontier), for ``ModelSelector``; ``None``
    # unknown.
    quality: int | None = None
    # ``lacks``, worked out once: the client's pre-flight reads it on every request.
    _lacks: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lacks = tuple(c for c in CAPABILITIES if getattr(self, c) is False)
        object.__setattr__(self, "_lacks", lacks)

    def supports(self, capability: str) -> bool | None:
        """Whether the model has ``capability`` (one of ``CAPABILITIES``); ``None`` unknown."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; use one of {CAPABILITIES}")
        value: bool | None = getattr(self, capability)
        return value

    @property
    def lacks(self) -> tuple[str, ...]:
        """The capabilities the table knows this model lacks."""
        return self._lacks

    @property
    def priced(self) -> bool:
        """Whether input and output prices are both known."""
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    def cost(
        self,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        *,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
    ) -> float | None:
        """USD for the given token counts (``None`` when the model has no price).

        ``cached_tokens`` and ``cache_creation_tokens`` are parts of ``prompt_tokens`` billed at
        the cache read and cache write prices (the input price when those are unknown)."""
        parts = self.cost_parts(
            prompt_tokens,
            completion_tokens,
            cached_tokens=cached_tokens,
            cache_creation_tokens=cache_creation_tokens,
        )
        return None if parts is None else parts[0] + parts[1]

    def cost_parts(
        self,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        *,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
    ) -> tuple[float, float] | None:
        """USD for the input and for the output of a call, as ``cost`` counts them."""
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        input_price, output_price = self.input_per_mtok, self.output_per_mtok
        read_price, write_price = self.cached_input_per_mtok, self.cache_write_per_mtok
        for tier in self.tiers:
            if prompt_tokens > tier.above:
                input_price, output_price = tier.input_per_mtok, tier.output_per_mtok
                read_price = tier.cached_input_per_mtok
        cached = max(0, min(cached_tokens, prompt_tokens))
        written = max(0, min(cache_creation_tokens, prompt_tokens - cached))
        plain = prompt_tokens - cached - written
        read_price = input_price if read_price is None else read_price
        write_price = input_price if write_price is None else write_price
        paid_input = plain * input_price + cached * read_price + written * write_price
        return paid_input / _PER, completion_tokens * output_price / _PER

    def usage_cost(self, usage: Usage) -> float | None:
        """USD for a ``Usage`` (``None`` without a price, or when no tokens were reported)."""
        if usage.prompt_tokens == 0 and usage.completion_tokens == 0:
            return None
        return self.cost(
            usage.prompt_tokens,
            usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
        )

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ModelInfo:
        """One ``models`` entry of the data file."""

        def number(key: str) -> float | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a non-negative number, not {value!r}")
            return float(value)

        def count(key: str) -> int | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a positive integer, not {value!r}")
            return value

        caps = data.get("capabilities") or {}
        if not isinstance(caps, Mapping):
            raise ValueError(f"capabilities must be an object, not {caps!r}")
        unknown = set(caps) - set(CAPABILITIES)
        if unknown:
            raise ValueError(
                f"unknown capabilities {sorted(unknown)}; the table knows {list(CAPABILITIES)}"
            )
        for cap, flag in caps.items():
            if flag is not None and not isinstance(flag, bool):
                raise ValueError(f"capability {cap!r} must be true, false or null, not {flag!r}")
        quality = data.get("quality")
        if quality is not None and not (
            isinstance(quality, int) and not isinstance(quality, bool) and 1 <= quality <= 5
        ):
            raise ValueError(f"quality must be an integer from 1 to 5, not {quality!r}")
        provider = data.get("provider")
        wire = data.get("wire")
        if wire is not None and not isinstance(wire, str):
            raise ValueError(f"wire must be a string, not {wire!r}")
        tiers = data.get("tiers") or ()
        if not isinstance(tiers, list | tuple) or not all(isinstance(t, Mapping) for t in tiers):
            raise ValueError(f"tiers must be a list of objects, not {tiers!r}")
        parsed = []
        for tier in tiers:
            prices = cls.from_dict(name, tier)
            above = tier.get("above")
            if not (isinstance(above, int) and not isinstance(above, bool) and above > 0):
                raise ValueError(f"a tier's 'above' must be a positive integer, not {above!r}")
            if prices.input_per_mtok is None or prices.output_per_mtok is None:
                raise ValueError("a tier needs 'input' and 'output' prices")
            parsed.append(
                PriceTier(
                    above,
                    prices.input_per_mtok,
                    prices.output_per_mtok,
                    prices.cached_input_per_mtok,
                )
            )
        return cls(
            name=name,
            provider=str(provider) if provider is not None else None,
            input_per_mtok=number("input"),
            output_per_mtok=number("output"),
            cached_input_per_mtok=number("cached_input"),
            cache_write_per_mtok=number("cache_write"),
            context_window=count("context_window"),
            max_output_tokens=count("max_output_tokens"),
            wire=wire,
            tiers=tuple(sorted(parsed, key=lambda t: t.above)),
            quality=quality,
            **{cap: caps.get(cap) for cap in CAPABILITIES},
        )

    def to_dict(self) -> dict[str, Any]:
        """The data-file form of this entry."""
        fields = {
            "provider": self.provider,
            "input": self.input_per_mtok,
            "cached_input": self.cached_input_per_mtok,
            "cache_write": self.cache_write_per_mtok,
            "output": self.output_per_mtok,
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "wire": self.wire,
            "tiers": [
                {
                    k: v
                    for k, v in {
                        "above": t.above,
                        "input": t.input_per_mtok,
                        "cached_input": t.cached_input_per_mtok,
                        "output": t.output_per_mtok,
                    }.items()
                    if v is not None
                }
                for t in self.tiers
            ]
            or None,
            "capabilities": {
                c: getattr(self, c) for c in CAPABILITIES if getattr(self, c) is not None
            }
            or None,
            "quality": self.quality,
        }
        return {k: v for k, v in fields.items() if v is not None}


class ModelTable:
    """Prices and context windows by model name, with cached fuzzy lookups."""

    def __init__(
        self,
        models: Mapping[str, ModelInfo],
        *,
        as_of: str | None = None,
        sources: Mapping[str, str] | None = None,
        origin: str = "<memory>",
        capabilities_as_of: str | None = None,
    ) -> None:
        self._models: dict[str, ModelInfo] = {k.lower(): v for k, v in models.items()}
        self.as_of = as_of
        # The date the capability flags were checked against the providers' model docs.
        self.capabilities_as_of = capabilities_as_of
        self.sources: dict[str, str] = dict(sources or {})
        self.origin = origin
        self._cache: dict[tuple[str | None, str], ModelInfo | None] = {}
        self._lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "<dict>") -> ModelTable:
        """A table from the data-file shape: ``{"as_of", "sources", "models": {name: {...}}}``."""
        models = data.get("models")
        if not isinstance(models, Mapping):
            raise ConfigurationError(f"model table {origin}: 'models' must be an object")
        parsed: dict[str, ModelInfo] = {}
        for name, entry in models.items():
            if not isinstance(entry, Mapping):
                raise ConfigurationError(f"model table {origin}: entry {name!r} is not an object")
            try:
                parsed[name] = ModelInfo.from_dict(name, entry)
            except ValueError as exc:
                raise ConfigurationError(f"model table {origin}: {name!r}: {exc}") from None
        sources = data.get("sources") or {}
        as_of = data.get("as_of")
        caps_as_of = data.get("capabilities_as_of")
        table = cls(
            parsed,
            as_of=str(as_of) if as_of is not None else None,
            capabilities_as_of=str(caps_as_of) if caps_as_of is not None else None,
            sources={str(k): str(v) for k, v in dict(sources).items()},
            origin=origin,
        )
        if data.get("extends") == "bundled":
            base = cls.bundled()
            base.merge(table)
            base.origin = f"{origin} (over the bundled table)"
            return base
        return table

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ModelTable:
        """A table from a JSON file of the bundled file's shape."""
        file = Path(path)
        try:
            data = orjson.loads(file.read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the model table {file}: {exc}") from None
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(f"the model table {file} is not valid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"the model table {file} must hold a JSON object")
        return cls.from_dict(data, origin=str(file))

    @classmethod
    def bundled(cls) -> ModelTable:
        """The table shipped with the package."""
        raw = resources.files("lexigram.ai.llm").joinpath("data/models.json").read_bytes()
        return cls.from_dict(orjson.loads(raw), origin="bundled models.json")

    def to_dict(self) -> dict[str, Any]:
        """The data-file form of the table (``from_dict`` reads it back)."""
        return {
            "schema_version": 1,
            "as_of": self.as_of,
            "capabilities_as_of": self.capabilities_as_of,
            "sources": dict(self.sources),
            "models": {name: info.to_dict() for name, info in self._models.items()},
        }

    # -- editing ---------------------------------------------------------------------------

    def register(self, info: ModelInfo) -> None:
        """Add or replace one model (its ``name`` is the key; ``provider/name`` is allowed)."""
        with self._lock:
            self._models[info.name.lower()] = info
            self._cache.clear()

    def merge(self, other: ModelTable) -> None:
        """Take every entry of ``other`` over this table's."""
        with self._lock:
            self._models.update(other._models)
            self.sources.update(other.sources)
            if other.as_of:
                self.as_of = other.as_of
            if other.capabilities_as_of:
                self.capabilities_as_of = other.capabilities_as_of
            self._cache.clear()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._models

    def __len__(self) -> int:
        return len(self._models)

    def entries(self) -> list[ModelInfo]:
        """Every entry of the table, in its order."""
        with self._lock:
            return list(self._models.values())

    # -- lookups ---------------------------------------------------------------------------

    def lookup(self, model: str, provider: str | None = None) -> ModelInfo | None:
        """The entry for ``model`` as ``provider`` names it, or ``None``. Cached."""
        key = (provider, model)
        try:
            return self._cache[key]
        except KeyError:
            pass
        # Under the lock: ``register`` may change the table meanwhile (its entries must not
        # change size mid-scan, and a miss cached after its ``_cache.clear()`` would be stale).
        with self._lock:
            found = self._find(model, provider)
            self._cache[key] = found
        return found

    def require(self, model: str, provider: str | None = None) -> ModelInfo:
        """Like ``lookup`` but raises ``UnknownModelError`` naming how to add the model."""
        info = self.lookup(model, provider)
        if info is None:
            raise UnknownModelError(
                f"no price or context window is known for model {model!r} (table: "
                f"{self.origin}, as of {self.as_of}); add it with "
                f"lexigram.ai.llm.pricing.model_table().register(ModelInfo(...)) or point "
                f"{ENV_VAR} at your own models.json"
            )
        return info

    def _find(self, model: str, provider: str | None) -> ModelInfo | None:
        for name in _candidate_names(model):
            if provider:
                found = self._match(f"{provider.lower()}/{name}")
                if found is not None:
                    return found
            found = self._match(name)
            if found is not None:
                return found
        return None

    def _match(self, name: str) -> ModelInfo | None:
        exact = self._models.get(name)
        if exact is not None:
            return exact
        best: str | None = None
        for key in self._models:
            if (
                len(key) < len(name)
                and name.startswith(key)
                and _VERSION_SUFFIX.match(name[len(key) :])
                and (best is None or len(key) > len(best))
            ):
                best = key
        return self._models[best] if best is not None else None


def _candidate_names(model: str) -> list[str]:
    """``model`` and the shorter names a table may know it by, most specific first."""
    name = model.strip().lower()
    names = [name]
    if "/" in name:
        names.append(name.rsplit("/", 1)[1])
    # Bedrock-style ``us.anthropic.claude-...``: drop leading alphabetic dotted segments.
    tail = names[-1]
    while "." in tail:
        head, rest = tail.split(".", 1)
        if not head.isalpha():
            break
        tail = rest
        names.append(tail)
    return names


# -- the process-wide table ------------------------------------------------------------------

_table: ModelTable | None = None
_table_lock = threading.Lock()


def model_table() -> ModelTable:
    """The table in use: ``set_model_table``'s, else ``$LEXIGRAM_MODEL_TABLE``, else bundled."""
    table = _table
    if table is not None:
        return table
    return _load_default()


def _load_default() -> ModelTable:
    global _table
    with _table_lock:
        if _table is None:
            path = os.environ.get(ENV_VAR)
            _table = ModelTable.from_file(path) if path else ModelTable.bundled()
        return _table


def set_model_table(table: ModelTable | str | os.PathLike[str] | None) -> ModelTable:
    """Use ``table`` (a ``ModelTable`` or a path to a JSON file) from now on; ``None`` goes
    back to the default (``$LEXIGRAM_MODEL_TABLE`` or the bundled file). Returns the table."""
    global _table
    with _table_lock:
        _table = None
        if table is not None:
            _table = table if isinstance(table, ModelTable) else ModelTable.from_file(table)
    return model_table()


def lookup_model(model: str, provider: str | None = None) -> ModelInfo | None:
    """The table's entry for ``model`` (``None`` when unknown)."""
    return model_table().lookup(model, provider)


def context_window_for(model: str, provider: str | None = None) -> int | None:
    """The model's context window in tokens, when the table knows it."""
    if not model:
        return None
    info = model_table().lookup(model, provider)
    return info.context_window if info is not None else None


def estimate_cost(
    model: str,
    *,
    prompt_tokens: int,
    completion_tokens: int = 0,
    cached_tokens: int = 0,
    cache_creation_tokens: int = 0,
    provider: str | None = None,
) -> CostEstimate:
    """What a call to ``model`` of these sizes costs (``.total_cost``, ``.input_cost``,
    ``.output_cost``); raises ``UnknownModelError`` when the table has no price for it."""
    table = model_table()
    info = table.require(model, provider)
    parts = info.cost_parts(
        prompt_tokens,
        completion_tokens,
        cached_tokens=cached_tokens,
        cache_creation_tokens=cache_creation_tokens,
    )
    if parts is None:
        raise UnknownModelError(f"model {model!r} is in the table but has no price")
    paid_input, paid_output = parts
    return CostEstimate(
        model=info.name,
        input_cost=paid_input,
        output_cost=paid_output,
        total_cost=paid_input + paid_output,
        as_of=table.as_of,
        source=table.sources.get(info.provider) if info.provider else None,
    )


def usage_cost(usage: Usage, *models: str, provider: str | None = None) -> float | None:
    """USD for ``usage`` under the first of ``models`` the table prices (``None`` if none)."""
    table = model_table()
    for model in models:
        if not model:
            continue
        info = table.lookup(model, provider)
        if info is not None and info.priced:
            return info.usage_cost(usage)
    return None


def request_capabilities(request: ChatRequest) -> frozenset[str]:
    """The capabilities ``request`` needs: ``vision`` for image parts, ``pdf`` for PDF
    documents, ``tools`` for tool definitions, ``json_schema`` for a JSON-schema response
    format. (No content part carries audio or asks for reasoning, so those are never needed.)"""
    needs: set[str] | None = None
    if request.tools:
        needs = {"tools"}
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        needs = (needs or set()) | {"json_schema"}
    for message in request.messages:
        content = message.content
        if type(content) is not tuple:
            continue
        for part in content:
            if isinstance(part, ImageDataPart | ImageURLPart):
                needs = (needs or set()) | {"vision"}
            elif isinstance(part, DocumentPart) and part.media_type == "application/pdf":
                needs = (needs or set()) | {"pdf"}
    return frozenset(needs) if needs else _NO_NEEDS


_NO_NEEDS: frozenset[str] = frozenset()


def missing_capability(
    request: ChatRequest, info: ModelInfo | None, needs: frozenset[str] | None = None
) -> str | None:
    """The first capability ``request`` needs that the table knows ``info``'s model lacks, or
    ``None`` (also when the model is unknown: what the table does not know is allowed).
    ``needs`` is ``request_capabilities(request)`` when the caller has it already."""
    if info is None or not info.lacks:
        return None
    if needs is None:
        needs = request_capabilities(request)
    if not needs:
        return None
    for capability in info.lacks:
        if capability in needs:
            return capability
    return None


_CAPABILITY_WORDS = {
    "vision": "image input",
    "audio": "audio input",
    "pdf": "PDF documents",
    "tools": "tools (function calling)",
    "json_schema": "a JSON-schema response format",
    "reasoning": "reasoning (thinking)",
}


def unsupported_capability(
    model: str, capability: str, provider: str | None = None
) -> UnsupportedCapabilityError:
    """The error for a request ``model`` cannot take because it lacks ``capability``."""
    table = model_table()
    return UnsupportedCapabilityError(
        f"Model {model!r} does not take {_CAPABILITY_WORDS.get(capability, capability)} "
        f"(model table {table.origin}, capabilities as of {table.capabilities_as_of}); no "
        f"request was sent. Use a model that does, or correct the entry with "
        f"lexigram.ai.llm.pricing.model_table().register(ModelInfo(...))",
        provider=provider,
        model=model,
        details={"capability": capability, "model": model},
    )
