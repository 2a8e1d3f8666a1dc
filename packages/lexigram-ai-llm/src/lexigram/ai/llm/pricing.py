"""Model prices and context windows, from a dated data file the user can replace, and prices
from the ``genai-prices`` package when it is installed (the ``prices`` extra).

The bundled table is ``lexigram/ai/llm/data/models.json`` (its ``as_of`` date and ``sources``
say where the numbers come from). Replace it with the ``LEXIGRAM_MODEL_TABLE`` environment
variable (a path to a file of the same shape) or ``set_model_table(...)``; add or override one
model with ``model_table().register(...)``. A file with ``"extends": "bundled"`` is merged over
the bundled table instead of replacing it.

Lookups accept what providers send back: dated snapshots (``gpt-4o-2024-08-06``), provider
prefixes (``openai/gpt-4o-mini``, ``models/gemini-2.5-flash``), Bedrock ids
(``us.anthropic.claude-3-5-sonnet-20240620-v1:0``) and Vertex ids (``claude-sonnet-4@20250514``).
A suffix is only ignored when it looks like a version, so ``o1-pro`` is never priced as ``o1``.

Where a price comes from (``estimate_cost``, ``usage_cost``, ``model_price`` and so
``Completion.cost``), first match wins:

1. a model entry *you* gave: ``model_table().register(...)``, a ``set_model_table(...)`` table
   or ``$LEXIGRAM_MODEL_TABLE`` file (entries of the bundled file do not count as yours);
2. ``genai-prices``' bundled data snapshot, when the package is importable and the provider is
   one it knows (``openai``, ``azure-openai``, ``anthropic``, ``gemini``/``vertex`` (Google),
   ``bedrock`` (AWS), ``groq``, ``mistral``, ``deepseek``, ``together``, ``fireworks``, ``xai``,
   ``openrouter``, ``cohere``, ``cloudflare``; a call without a provider lets genai-prices
   guess it from the model name). Input, output, cache read and cache write prices and their
   long-context tiers are taken; other units (per-request and search fees, audio and image
   tokens, the 1-hour cache write) are not counted. Never its network auto-update:
   ``UpdatePrices`` is not started, prices are what the installed version ships;
3. the bundled table (also for local and OpenAI-compatible servers, and for models
   genai-prices does not know).

``CostEstimate.source`` and ``.as_of`` say which was used (``"genai-prices 0.2.3: <pricing
page>"`` and ``"genai-prices 0.2.3"``, which has no data date of its own, or the table's
provider pricing page and date). Context windows, capabilities and quality always come from
the table. ``LEXIGRAM_PRICES=table`` (or ``set_price_source("table")``, or ``prices="table"``
on ``estimate_cost``/``usage_cost``/``model_price``) skips genai-prices.

``import genai_prices`` takes about half a second and its data as long again, so it is never
imported with this module: the first look-up of a model from a provider genai-prices knows
starts loading it on a background thread (the client does that look-up before sending its
first request, so the load overlaps the network wait), and the first price needs it waits for
that load. A price is resolved once per (provider, model), converted to per-million-token
floats and kept (until a dated price change in genai-prices' data comes due); each call's cost
is plain arithmetic on those.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import orjson

from lexigram.ai.llm.exceptions import ConfigurationError, UnsupportedCapabilityError
from lexigram.ai.llm.types import ChatRequest, DocumentPart, ImageDataPart, ImageURLPart, Usage

__all__ = [
    "CAPABILITIES",
    "ENV_VAR",
    "GENAI_PROVIDERS",
    "PRICES_ENV_VAR",
    "CostEstimate",
    "ModelInfo",
    "ModelPrice",
    "ModelTable",
    "PriceSource",
    "PriceTier",
    "UnknownModelError",
    "context_window_for",
    "estimate_cost",
    "lookup_model",
    "missing_capability",
    "model_price",
    "model_table",
    "price_source",
    "request_capabilities",
    "set_model_table",
    "set_price_source",
    "unsupported_capability",
    "usage_cost",
    "warm_prices",
]

ENV_VAR = "LEXIGRAM_MODEL_TABLE"
#: ``table`` prices every model from the model table alone; ``auto`` (the default) takes
#: genai-prices' price where it has one (see the module docstring for the order).
PRICES_ENV_VAR = "LEXIGRAM_PRICES"
PriceSource = Literal["auto", "table"]
_PRICE_SOURCES: tuple[PriceSource, ...] = ("auto", "table")

#: Our provider names and the genai-prices provider ids that price their models. A provider not
#: here (local models, Ollama, OpenAI-compatible servers, your own) is priced from the table.
GENAI_PROVIDERS: Mapping[str, str] = MappingProxyType(
    {
        "openai": "openai",
        "openai_responses": "openai",
        "azure": "azure",
        "azure-openai": "azure",
        "azure-openai-responses": "azure",
        "anthropic": "anthropic",
        "gemini": "google",
        "vertex": "google",
        "bedrock": "aws",
        "groq": "groq",
        "mistral": "mistral",
        "deepseek": "deepseek",
        "together": "together",
        "fireworks": "fireworks",
        "xai": "x-ai",
        "openrouter": "openrouter",
        "cohere": "cohere",
        "cloudflare": "cloudflare",
    }
)

_logger = logging.getLogger(__name__)

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
    whole call is billed at them, as Gemini bills prompts over 200k tokens. A cache read price
    of ``None`` is this tier's input price; a cache write price of ``None`` is the model's own
    cache write price (the tier's input price when that is unknown too)."""

    above: int
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None


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
                if tier.cache_write_per_mtok is not None:
                    write_price = tier.cache_write_per_mtok
        cached = max(0, min(cached_tokens, prompt_tokens))
        written = max(0, min(cache_creation_tokens, prompt_tokens - cached))
        plain = prompt_tokens - cached - written
        read_price = input_price if read_price is None else read_price
        write_price = input_price if write_price is None else write_price
        paid_input = plain * input_price + cached * read_price + written * write_price
        return paid_input / _PER, completion_tokens * output_price / _PER

    def usage_cost(self, usage: Usage) -> float | None:
        """USD for a ``Usage`` (``None`` without a price, or when no tokens were reported)."""
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        if prompt == 0 and completion == 0:
            return None
        if not self.tiers and not usage.cached_tokens and not usage.cache_creation_tokens:
            # What ``cost_parts`` adds up for plain prompt tokens, without its keywords.
            input_price, output_price = self.input_per_mtok, self.output_per_mtok
            if input_price is None or output_price is None:
                return None
            read_price, write_price = self.cached_input_per_mtok, self.cache_write_per_mtok
            paid_input = (
                prompt * input_price
                + 0 * (input_price if read_price is None else read_price)
                + 0 * (input_price if write_price is None else write_price)
            )
            return paid_input / _PER + completion * output_price / _PER
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
                    prices.cache_write_per_mtok,
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
                        "cache_write": t.cache_write_per_mtok,
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
        # Resolved prices by (price source, provider, model), see ``model_price``; emptied with
        # ``_cache``. ``_version`` counts edits, so a price resolved across one is not kept.
        self._prices: dict[tuple[str, str | None, str], ModelPrice | None] = {}
        self._version = 0
        # The entries as the bundled file has them; any other entry is the user's, and the
        # user's prices come before genai-prices'.
        self._bundled: dict[str, ModelInfo] = {}
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
        table = cls.from_dict(orjson.loads(raw), origin="bundled models.json")
        table._bundled = dict(table._models)
        return table

    def is_bundled(self, info: ModelInfo) -> bool:
        """Whether ``info`` is this table's entry as the bundled file has it (not one the user
        registered or loaded from their own file)."""
        return self._bundled.get(info.name.lower()) is info

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
            self._prices.clear()
            self._version += 1

    def merge(self, other: ModelTable) -> None:
        """Take every entry of ``other`` over this table's."""
        with self._lock:
            self._models.update(other._models)
            self._bundled.update(other._bundled)
            self.sources.update(other.sources)
            if other.as_of:
                self.as_of = other.as_of
            if other.capabilities_as_of:
                self.capabilities_as_of = other.capabilities_as_of
            self._cache.clear()
            self._prices.clear()
            self._version += 1

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
        if provider is not None and provider.lower() in GENAI_PROVIDERS:
            # The client looks its model up before its first request goes out: load the price
            # data meanwhile (unless saved before), so that pricing the answer need not wait.
            _warm_for(model, provider)
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


# -- where prices come from ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's price, resolved once: ``info`` holds the prices (USD per million tokens and
    long-context tiers; its ``cost``, ``cost_parts`` and ``usage_cost`` do the arithmetic),
    ``source`` and ``as_of`` say where they come from (as on ``CostEstimate``), ``origin`` is
    ``"genai-prices"`` or ``"table"``."""

    info: ModelInfo
    source: str | None
    as_of: str | None
    origin: Literal["genai-prices", "table"]
    # When a dated price change in genai-prices' data takes effect (``time.time()``): the
    # price is resolved again after it.
    expires: float = field(default=math.inf, repr=False, compare=False)


_source: PriceSource | None = None


def price_source() -> PriceSource:
    """The price source in use: ``set_price_source``'s, else ``$LEXIGRAM_PRICES``, else
    ``"auto"`` (genai-prices where it prices the model, see the module docstring)."""
    source = _source
    return source if source is not None else _source_from_env()


def _source_from_env() -> PriceSource:
    global _source
    value = os.environ.get(PRICES_ENV_VAR, "").strip().lower() or "auto"
    _source = _checked_source(value, f"${PRICES_ENV_VAR}")
    return _source


def _checked_source(value: str, where: str) -> PriceSource:
    for source in _PRICE_SOURCES:
        if value == source:
            return source
    raise ConfigurationError(
        f"{where} must be 'auto' (genai-prices where installed, else the model table) or "
        f"'table' (the model table only), not {value!r}"
    )


def set_price_source(source: PriceSource | None) -> PriceSource:
    """Take prices from ``source`` from now on: ``"table"`` (the model table only) or
    ``"auto"``; ``None`` goes back to ``$LEXIGRAM_PRICES`` (default ``"auto"``). Returns the
    source in use."""
    global _source
    _source = None if source is None else _checked_source(source, "the price source")
    return price_source()


class _GenaiPrices:
    """genai-prices' bundled data snapshot, loaded once."""

    __slots__ = ("snapshot", "tiered", "version")

    def __init__(self, snapshot: Any, tiered: Any, version: str) -> None:
        self.snapshot = snapshot
        self.tiered = tiered
        self.version = version


_genai: _GenaiPrices | None = None
_genai_loaded = False
_genai_lock = threading.Lock()
_warm_lock = threading.Lock()
_warming: threading.Thread | None = None


def _load_genai() -> _GenaiPrices | None:
    """genai-prices' data (``None`` when it is not installed); imports it the first time."""
    global _genai, _genai_loaded
    if _genai_loaded:
        return _genai
    with _genai_lock:
        if not _genai_loaded:
            _genai = _import_genai()
            _genai_loaded = True
    return _genai


def _import_genai() -> _GenaiPrices | None:
    # By module name, so that mypy does not read the 1.6 MB data module (typed as Any here).
    try:
        package = importlib.import_module("genai_prices")
        snapshots = importlib.import_module("genai_prices.data_snapshot")
        data = importlib.import_module("genai_prices.data")
        types = importlib.import_module("genai_prices.types")
        # The bundled data as this version ships it: never ``get_snapshot()``, which returns
        # what an ``UpdatePrices`` fetched from the network if anything in the process ran one.
        snapshot = snapshots.DataSnapshot(providers=data.providers, from_auto_update=False)
        return _GenaiPrices(snapshot, types.TieredPrices, str(package.__version__))
    except ImportError:
        return None
    except Exception as exc:  # a broken install: price from the table, and say why once
        _logger.warning("genai-prices could not be loaded (%r); prices come from the table", exc)
        return None


def warm_prices() -> None:
    """Start loading genai-prices' data on a background thread, so that the first price does
    not wait for it. Does nothing when it is loaded or loading, not installed, or prices come
    from the table."""
    global _warming
    if _genai_loaded or _warming is not None or price_source() != "auto":
        return
    if _saved_prices() is None:
        return  # not installed
    with _warm_lock:
        if _genai_loaded or _warming is not None:
            return
        _warming = threading.Thread(target=_load_genai, name="lexigram-prices-load", daemon=True)
        _warming.start()


def _warm_for(model: str, provider: str | None) -> None:
    """``warm_prices()``, unless an earlier process saved genai-prices' price of ``model``."""
    if _genai_loaded or _warming is not None or price_source() != "auto":
        return
    saved = _saved_prices()
    if saved is None or _saved_key(model, provider) in saved:
        return
    # Providers answer with the dated snapshot they served (``gpt-4o-mini`` comes back as
    # ``gpt-4o-mini-2024-07-18``), and that is the name priced and saved.
    prefix = _saved_key(model, provider).lower()
    for key in list(saved):
        if key.lower().startswith(prefix) and _VERSION_SUFFIX.match(key[len(prefix) :]):
            return
    warm_prices()


def _genai_price(genai: _GenaiPrices, model: str, provider: str | None) -> ModelPrice | None:
    """genai-prices' price for ``model`` from ``provider``, in our form (``None`` unknown)."""
    provider_id = None
    if provider is not None:
        provider_id = GENAI_PROVIDERS.get(provider.lower())
        if provider_id is None:
            return None
    found = None
    for name in _candidate_names(model):
        try:
            found = genai.snapshot.find_provider_model(name, None, provider_id, None)
            break
        except LookupError:
            continue
    if found is None:
        return None
    genai_provider, genai_model = found
    now = datetime.now(UTC)
    prices = genai_model.get_prices(now).__dict__
    units = [prices.get(k) for k in ("input_mtok", "output_mtok", "cache_read_mtok")]
    units.append(prices.get("cache_write_mtok"))
    if units[0] is None and units[1] is None:
        return None  # priced in other units only (audio hours, requests...)
    tiered = genai.tiered
    starts = sorted(
        {tier.start for unit in units if isinstance(unit, tiered) for tier in unit.tiers}
    )

    def at(unit: Any, start: int) -> float | None:
        # The unit's price for a prompt just over ``start`` tokens (-1: below every tier).
        if unit is None:
            return None
        if not isinstance(unit, tiered):
            return float(unit)
        price = unit.base
        for tier in unit.tiers:
            if tier.start <= start:
                price = tier.price
        return float(price)

    base = [at(unit, -1) for unit in units]
    tiers = []
    for start in starts:
        paid = [at(unit, start) for unit in units]
        tiers.append(PriceTier(start, paid[0] or 0.0, paid[1] or 0.0, paid[2], paid[3]))
    info = ModelInfo(
        name=str(genai_model.id),
        provider=provider,
        input_per_mtok=base[0] or 0.0,
        output_per_mtok=base[1] or 0.0,
        cached_input_per_mtok=base[2],
        cache_write_per_mtok=base[3],
        tiers=tuple(tiers),
    )
    release = f"genai-prices {genai.version}"
    pages = genai_provider.pricing_urls
    return ModelPrice(
        info,
        source=f"{release}: {pages[0]}" if pages else release,
        as_of=release,
        origin="genai-prices",
        expires=_next_price_change(genai_model.prices, now),
    )


def _next_price_change(prices: Any, now: datetime) -> float:
    """When the price in effect ``now`` next changes (``time.time()``; ``math.inf`` never):
    a dated new price, or an edge of a daily window (DeepSeek's off-peak hours)."""
    if not isinstance(prices, list):
        return math.inf
    changes = []
    for conditional in prices:
        constraint = conditional.constraint
        start_date = getattr(constraint, "start_date", None)
        if start_date is not None:
            change = datetime(start_date.year, start_date.month, start_date.day, tzinfo=UTC)
            if change > now:
                changes.append(change.timestamp())
        for edge in (
            getattr(constraint, "start_time", None),
            getattr(constraint, "end_time", None),
        ):
            if edge is None:
                continue
            if edge.tzinfo is None:
                edge = edge.replace(tzinfo=UTC)
            change = datetime.combine(now.date() - timedelta(days=1), edge)
            while change <= now:
                change += timedelta(days=1)
            changes.append(change.timestamp())
    return min(changes, default=math.inf)


# genai-prices' prices resolved by earlier processes, kept in the user's cache directory
# (``genai-prices.json``; ``$LEXIGRAM_LLM_HOME/cache`` when that is set) and valid for the
# installed copy of its data only: a process whose models were all priced before reads this
# small file instead of importing genai-prices (the half-second ``import`` and as much again
# for its data).
_saved: dict[str, Any] | None = None
_saved_stamp: str | None = None
_saved_loaded = False
_saved_lock = threading.Lock()


def _genai_stamp() -> str | None:
    """Which installed genai-prices data this is (``None``: genai-prices is not installed)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("genai_prices")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data.py"
    try:
        stat = data.stat()
    except OSError:
        return None
    return f"{data}:{stat.st_size}:{stat.st_mtime_ns}"


def _saved_file() -> Path:
    from lexigram.ai.llm._userfiles import APP_NAME, HOME_VARIABLE

    home = os.environ.get(HOME_VARIABLE)
    if home:
        return Path(home).expanduser() / "cache" / "genai-prices.json"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "genai-prices.json"


def _read_saved(stamp: str) -> dict[str, Any]:
    try:
        data = orjson.loads(_saved_file().read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("stamp") != stamp:
        return {}
    prices = data.get("prices")
    return dict(prices) if isinstance(prices, dict) else {}


def _saved_prices() -> dict[str, Any] | None:
    """The saved prices (``None`` when genai-prices is not installed); read once."""
    global _saved, _saved_stamp, _saved_loaded
    if _saved_loaded:
        return _saved
    with _saved_lock:
        if not _saved_loaded:
            _saved_stamp = _genai_stamp()
            _saved = None if _saved_stamp is None else _read_saved(_saved_stamp)
            _saved_loaded = True
    return _saved


def _save_price(key: str, price: ModelPrice | None) -> None:
    """Keep ``price`` in memory and in the file (merged with what other processes saved;
    a file that cannot be written is left alone)."""
    saved, stamp = _saved_prices(), _saved_stamp
    if saved is None or stamp is None:
        return
    entry = None if price is None else _price_to_json(price)
    with _saved_lock:
        saved[key] = entry
        path = _saved_file()
        merged = {**_read_saved(stamp), key: entry}
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(orjson.dumps({"stamp": stamp, "prices": merged}))
            os.replace(temporary, path)
        except OSError as exc:
            _logger.debug("cannot save genai-prices' prices to %s: %s", path, exc)
            with contextlib.suppress(OSError):
                temporary.unlink()


def _price_to_json(price: ModelPrice) -> dict[str, Any]:
    info = price.info
    return {
        "name": info.name,
        "prices": [
            info.input_per_mtok,
            info.output_per_mtok,
            info.cached_input_per_mtok,
            info.cache_write_per_mtok,
        ],
        "tiers": [
            (
                t.above,
                t.input_per_mtok,
                t.output_per_mtok,
                t.cached_input_per_mtok,
                t.cache_write_per_mtok,
            )
            for t in info.tiers
        ],
        "source": price.source,
        "as_of": price.as_of,
        "expires": None if math.isinf(price.expires) else price.expires,
    }


def _price_from_json(entry: Any, provider: str | None) -> ModelPrice | None:
    """A saved price (``None`` when the entry is not of the shape ``_price_to_json`` writes)."""
    try:
        paid = [None if p is None else float(p) for p in entry["prices"]]
        tiers = tuple(
            PriceTier(
                int(t[0]),
                float(t[1]),
                float(t[2]),
                *(None if p is None else float(p) for p in t[3:5]),
            )
            for t in entry["tiers"]
        )
        info = ModelInfo(
            name=str(entry["name"]),
            provider=provider,
            input_per_mtok=paid[0] or 0.0,
            output_per_mtok=paid[1] or 0.0,
            cached_input_per_mtok=paid[2],
            cache_write_per_mtok=paid[3],
            tiers=tiers,
        )
        expires = entry["expires"]
        return ModelPrice(
            info,
            source=None if entry["source"] is None else str(entry["source"]),
            as_of=None if entry["as_of"] is None else str(entry["as_of"]),
            origin="genai-prices",
            expires=math.inf if expires is None else float(expires),
        )
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _saved_key(model: str, provider: str | None) -> str:
    return f"{provider or ''}\n{model}"


def _genai_lookup(model: str, provider: str | None) -> ModelPrice | None:
    """genai-prices' price for ``model`` from ``provider``: saved by an earlier process, else
    resolved from its data (imported on first need) and saved."""
    saved = _saved_prices()
    if saved is None:
        return None  # not installed
    key = _saved_key(model, provider)
    if key in saved:
        entry = saved[key]
        if entry is None:
            return None
        price = _price_from_json(entry, provider)
        if price is not None and price.expires > time.time():
            return price
    genai = _load_genai()
    if genai is None:
        return None
    price = _genai_price(genai, model, provider)
    _save_price(key, price)
    return price


def _table_price(table: ModelTable, info: ModelInfo) -> ModelPrice:
    source = table.sources.get(info.provider) if info.provider else None
    return ModelPrice(info, source=source, as_of=table.as_of, origin="table")


def _resolve_price(
    table: ModelTable, model: str, provider: str | None, source: PriceSource
) -> ModelPrice | None:
    info = table.lookup(model, provider)
    if info is not None and info.priced and not table.is_bundled(info):
        return _table_price(table, info)  # the user's own price comes first
    if source == "auto" and (provider is None or provider.lower() in GENAI_PROVIDERS):
        price = _genai_lookup(model, provider)
        if price is not None:
            return price
    return _table_price(table, info) if info is not None and info.priced else None


_MISSING: Any = object()
_PRICES_KEPT = 1024


def model_price(
    model: str, provider: str | None = None, *, prices: PriceSource | None = None
) -> ModelPrice | None:
    """The price of ``model`` as ``provider`` names it (``None`` when no source prices it),
    from ``prices`` (default ``price_source()``). Resolved once per (provider, model) and
    kept: this is what every request's cost reads."""
    source = price_source() if prices is None else _checked_source(prices, "prices")
    table = model_table()
    key = (source, provider, model)
    found = table._prices.get(key, _MISSING)
    if found is not _MISSING and (found is None or found.expires > time.time()):
        price: ModelPrice | None = found
        return price
    version = table._version
    resolved = _resolve_price(table, model, provider, source)
    with table._lock:
        # Not kept when the table changed meanwhile (a ``register`` may change the answer).
        if table._version == version:
            if len(table._prices) >= _PRICES_KEPT:
                table._prices.clear()
            table._prices[key] = resolved
    return resolved


def estimate_cost(
    model: str,
    *,
    prompt_tokens: int,
    completion_tokens: int = 0,
    cached_tokens: int = 0,
    cache_creation_tokens: int = 0,
    provider: str | None = None,
    prices: PriceSource | None = None,
) -> CostEstimate:
    """What a call to ``model`` of these sizes costs (``.total_cost``, ``.input_cost``,
    ``.output_cost``, and ``.source``/``.as_of``: where the price comes from); raises
    ``UnknownModelError`` when no source prices it. ``prices="table"`` uses the table only."""
    price = model_price(model, provider, prices=prices)
    if price is None:
        model_table().require(model, provider)
        raise UnknownModelError(f"model {model!r} is in the table but has no price")
    parts = price.info.cost_parts(
        prompt_tokens,
        completion_tokens,
        cached_tokens=cached_tokens,
        cache_creation_tokens=cache_creation_tokens,
    )
    assert parts is not None  # a ModelPrice always has input and output prices
    paid_input, paid_output = parts
    return CostEstimate(
        model=price.info.name,
        input_cost=paid_input,
        output_cost=paid_output,
        total_cost=paid_input + paid_output,
        as_of=price.as_of,
        source=price.source,
    )


def usage_cost(
    usage: Usage, *models: str, provider: str | None = None, prices: PriceSource | None = None
) -> float | None:
    """USD for ``usage`` under the first of ``models`` with a price (``None`` if none, or
    when no tokens were reported)."""
    source = price_source() if prices is None else _checked_source(prices, "prices")
    table = model_table()
    for model in models:
        if not model:
            continue
        # ``model_price``'s kept answer read here (the common case), else ``model_price``.
        price: ModelPrice | None = table._prices.get((source, provider, model), _MISSING)
        if price is _MISSING or (price is not None and not price.expires > time.time()):
            price = model_price(model, provider, prices=source)
        if price is not None:
            return price.info.usage_cost(usage)
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
