"""The models a provider serves, read from its list endpoint, one reader per wire family.

``AbstractLLMClient.list_models()`` lands here. Every page goes out through the client's own
``send_encoded`` (its headers, signer and transport; non-2xx answers mapped by its codec, every
credential redacted), so listing gets the transport's policy like any call: no redirect across
origins, bounded bodies, one deadline for all pages together.

- OpenAI-style hosts (openai, groq, mistral, deepseek, together, fireworks, xai, openrouter,
  OpenAI-compatible servers): ``GET {base}/models`` -> ``{"data": [{"id": ...}]}`` (Together
  answers a bare list); Azure: ``GET {endpoint}/openai/models?api-version=...``.
- Anthropic: ``GET /v1/models?limit=1000``, paged by ``has_more`` and ``after_id=last_id``.
- Gemini: ``GET /{version}/models?pageSize=1000``, paged by ``nextPageToken``/``pageToken``.
- Cohere: ``GET /v1/models?page_size=1000``, paged by ``next_page_token``/``page_token``.
- Ollama: ``GET /api/tags``.
- Bedrock: ``GET /foundation-models`` on the control-plane host (``bedrock.{region}...``, not
  ``bedrock-runtime``), SigV4-signed by the client's signer.
- Vertex AI has no listing here: ``ModelListingUnsupportedError``.

Paging stops after ``MAX_PAGES`` pages or at a cursor seen before, with a typed error: a host
that pages forever never holds the caller.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from lexigram.ai.llm.exceptions import (
    LLMError,
    ResponseLimitError,
    StreamError,
    UnsupportedCapabilityError,
)
from lexigram.ai.llm.providers._codec_common import SHAPE_ERRORS, excerpt, json_path, parse_answer
from lexigram.ai.llm.providers.base import HTTPRequest
from lexigram.result import Err, Ok, Result

if TYPE_CHECKING:
    from lexigram.ai.llm.client import AbstractLLMClient
    from lexigram.ai.llm.providers.http import HTTPLLMClient

__all__ = ["MAX_PAGES", "ModelListing", "ModelListingUnsupportedError", "list_models"]

#: The most pages one listing reads; a host still saying "more" after that gets an error.
MAX_PAGES = 50
_PAGE_SIZE = 1000  # the largest page Anthropic, Gemini and Cohere accept


class ModelListingUnsupportedError(UnsupportedCapabilityError):
    """The provider (or this client) has no model list this library can read."""

    default_code = "list_models_unsupported"


@dataclass(frozen=True, slots=True)
class ModelListing:
    """One model a provider says it serves, as its list endpoint describes it.

    ``id`` is the name to pass as ``model=``. ``context_window``, ``max_output_tokens`` and
    ``capabilities`` are what the provider itself reports (often nothing: OpenAI lists ids
    only); the model table (``lexigram.ai.llm.pricing``) knows more about the models it has.
    ``raw`` is the provider's own entry."""

    id: str
    provider: str
    display_name: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    owned_by: str | None = None
    capabilities: frozenset[str] = frozenset()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


async def list_models(
    client: AbstractLLMClient, *, timeout: float | None = None
) -> Result[list[ModelListing], LLMError]:
    """The models ``client``'s provider serves; ``timeout`` (default ``config.timeout``)
    bounds every page together. ``Err`` of a typed ``LLMError`` when they cannot be read."""
    from lexigram.ai.llm.providers.http import HTTPLLMClient
    from lexigram.ai.llm.providers.local import LocalLLMClient

    try:
        if isinstance(client, HTTPLLMClient):
            return Ok(await _Pager(client, timeout).run())
        if isinstance(client, LocalLLMClient):
            return Ok(_local_models(client))
    except LLMError as error:
        return Err(error)
    return Err(
        ModelListingUnsupportedError(
            f"{type(client).__name__} cannot list its models; override list_models() to "
            "say which it serves",
            provider=client.provider_name,
            details={"capability": "list_models"},
        )
    )


class _Pager:
    """One listing: the requests for each page and the readers of their answers."""

    def __init__(self, client: HTTPLLMClient, timeout: float | None) -> None:
        self.client = client
        self.provider = client.provider_name
        self.ctx = client.call_context("")
        self.timeout = client.config.timeout if timeout is None else timeout
        self.deadline = asyncio.get_running_loop().time() + self.timeout

    async def run(self) -> list[ModelListing]:
        profile = self.client.profile
        options = self.ctx.options
        base = self.client.base_url
        if profile.codec in ("openai", "responses"):
            path, query = _openai_models_path(options)
            return await self._pages(base + path, query, _openai_page)
        if profile.codec == "anthropic":
            return await self._pages(base + "/v1/models", {"limit": str(_PAGE_SIZE)}, _anthropic)
        if profile.codec == "gemini" and not options.get("vertex"):
            version = options.get("api_version", "v1beta")
            return await self._pages(
                f"{base}/{version}/models", {"pageSize": str(_PAGE_SIZE)}, _gemini
            )
        if profile.codec == "cohere":
            return await self._pages(base + "/v1/models", {"page_size": str(_PAGE_SIZE)}, _cohere)
        if profile.codec == "ollama":
            return await self._pages(base + "/api/tags", {}, _ollama)
        if profile.codec == "bedrock":
            return await self._pages(
                _bedrock_control_plane(base) + "/foundation-models", {}, _bedrock
            )
        raise ModelListingUnsupportedError(
            f"Listing the models of {self.provider} is not supported (Vertex AI's model garden "
            "is not read by this library); name a model from the provider's documentation",
            provider=self.provider,
            details={"capability": "list_models"},
        )

    async def _pages(
        self,
        url: str,
        query: Mapping[str, str],
        read: Callable[[Any, str], tuple[list[ModelListing], dict[str, str] | None]],
    ) -> list[ModelListing]:
        models: list[ModelListing] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        params = dict(query)
        for _ in range(MAX_PAGES):
            body = await self.client.send_encoded(
                HTTPRequest("GET", _with_query(url, params), self.client.auth_headers()),
                self.ctx,
                timeout=self.timeout,
                deadline=self.deadline,
            )
            data = parse_answer(body, self.ctx, what="a model list", who=self.provider)
            try:
                page, cursor = read(data, self.provider)
            except SHAPE_ERRORS:
                raise StreamError(
                    f"{self.provider}'s model list is not in the shape its API documents: "
                    f"{excerpt(body)!r}",
                    provider=self.provider,
                    code="malformed_model_list",
                ) from None
            models.extend(page)
            if cursor is None:
                return models
            key = tuple(sorted(cursor.items()))
            if key in seen:
                raise ResponseLimitError(
                    f"{self.provider}'s model list sent the same page cursor twice; stopped "
                    f"after {len(models)} models",
                    provider=self.provider,
                    code="pagination_loop",
                )
            seen.add(key)
            params = {**query, **cursor}
        raise ResponseLimitError(
            f"{self.provider}'s model list still had more after {MAX_PAGES} pages "
            f"({len(models)} models); stopped there",
            provider=self.provider,
            code="too_many_pages",
        )


def _with_query(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


# -- readers, one per wire: (decoded JSON, provider) -> (models, next cursor or None) ----------


def _openai_models_path(options: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """``/models``, or where Azure keeps its list (the chat path says which API it is)."""
    if options.get("models_path"):
        return str(options["models_path"]), {}
    if str(options.get("chat_path", "")).startswith("/openai/deployments/"):
        return "/openai/models", {str(k): str(v) for k, v in options.get("query", {}).items()}
    if str(options.get("responses_path", "")).startswith("/openai/v1/"):
        return "/openai/v1/models", {}
    return "/models", {}


def _openai_page(data: Any, provider: str) -> tuple[list[ModelListing], dict[str, str] | None]:
    items = data if isinstance(data, list) else data["data"]
    models = [_openai_model(item, provider) for item in items if _has_text(item, "id")]
    # OpenAI's own list is one page; hosts that page it use OpenAI's cursor convention.
    if isinstance(data, dict) and data.get("has_more") is True and _has_text(data, "last_id"):
        return models, {"after": data["last_id"]}
    return models, None


def _openai_model(item: Mapping[str, Any], provider: str) -> ModelListing:
    capabilities: set[str] = set()
    # Mistral: {"capabilities": {"function_calling": true, "vision": true, ...}}
    flags = item.get("capabilities")
    if isinstance(flags, Mapping):
        for name, capability in (("function_calling", "tools"), ("vision", "vision")):
            if flags.get(name) is True:
                capabilities.add(capability)
    # OpenRouter: architecture.input_modalities and supported_parameters.
    modalities = json_path(item, "architecture", "input_modalities")
    if isinstance(modalities, list):
        capabilities.update(_mapped(modalities, {"image": "vision", "audio": "audio"}))
    parameters = item.get("supported_parameters")
    if isinstance(parameters, list):
        capabilities.update(
            _mapped(
                parameters,
                {"tools": "tools", "structured_outputs": "json_schema", "reasoning": "reasoning"},
            )
        )
    # Fireworks: supports_image_input, supports_tools.
    if item.get("supports_image_input") is True:
        capabilities.add("vision")
    if item.get("supports_tools") is True:
        capabilities.add("tools")
    return ModelListing(
        id=str(item["id"]),
        provider=provider,
        display_name=_text(item.get("display_name") or item.get("name")),
        # groq: context_window; together, openrouter, fireworks: context_length; mistral:
        # max_context_length.
        context_window=_first_int(
            item.get("context_window"), item.get("context_length"), item.get("max_context_length")
        ),
        max_output_tokens=_first_int(
            item.get("max_completion_tokens"),
            json_path(item, "top_provider", "max_completion_tokens"),
        ),
        owned_by=_text(item.get("owned_by") or item.get("organization")),
        capabilities=frozenset(capabilities),
        raw=item,
    )


def _anthropic(data: Any, provider: str) -> tuple[list[ModelListing], dict[str, str] | None]:
    models = [
        ModelListing(
            id=str(item["id"]),
            provider=provider,
            display_name=_text(item.get("display_name")),
            context_window=_first_int(item.get("max_input_tokens")),
            max_output_tokens=_first_int(item.get("max_tokens")),
            owned_by="anthropic",
            raw=item,
        )
        for item in data["data"]
        if _has_text(item, "id")
    ]
    if data.get("has_more") is True and _has_text(data, "last_id"):
        return models, {"after_id": data["last_id"]}
    return models, None


_GEMINI_METHODS = {"generateContent": "chat", "embedContent": "embed", "countTokens": ""}


def _gemini(data: Any, provider: str) -> tuple[list[ModelListing], dict[str, str] | None]:
    models = []
    for item in data.get("models") or ():
        if not _has_text(item, "name"):
            continue
        capabilities = set(_mapped(item.get("supportedGenerationMethods") or (), _GEMINI_METHODS))
        if item.get("thinking") is True:
            capabilities.add("reasoning")
        models.append(
            ModelListing(
                id=str(item["name"]).removeprefix("models/"),
                provider=provider,
                display_name=_text(item.get("displayName")),
                context_window=_first_int(item.get("inputTokenLimit")),
                max_output_tokens=_first_int(item.get("outputTokenLimit")),
                owned_by="google",
                capabilities=frozenset(capabilities - {""}),
                raw=item,
            )
        )
    token = data.get("nextPageToken")
    return models, ({"pageToken": token} if isinstance(token, str) and token else None)


_COHERE_FEATURES = {
    "tools": "tools",
    "strict_tools": "tools",
    "vision": "vision",
    "json_schema": "json_schema",
    "reasoning": "reasoning",
}


def _cohere(data: Any, provider: str) -> tuple[list[ModelListing], dict[str, str] | None]:
    models = []
    for item in data.get("models") or ():
        if not _has_text(item, "name"):
            continue
        capabilities = set(_mapped(item.get("features") or (), _COHERE_FEATURES))
        capabilities.update(
            _mapped(item.get("endpoints") or (), {"chat": "chat", "embed": "embed"})
        )
        models.append(
            ModelListing(
                id=str(item["name"]),
                provider=provider,
                context_window=_first_int(item.get("context_length")),
                owned_by="cohere",
                capabilities=frozenset(capabilities),
                raw=item,
            )
        )
    token = data.get("next_page_token")
    return models, ({"page_token": token} if isinstance(token, str) and token else None)


def _ollama(data: Any, provider: str) -> tuple[list[ModelListing], dict[str, str] | None]:
    models = [
        ModelListing(
            id=str(item.get("name") or item["model"]),
            provider=provider,
            display_name=_text(json_path(item, "details", "parameter_size")),
            raw=item,
        )
        for item in data.get("models") or ()
        if _has_text(item, "name") or _has_text(item, "model")
    ]
    return models, None


def _bedrock(data: Any, provider: str) -> tuple[list[ModelListing], dict[str, str] | None]:
    models = []
    for item in data["modelSummaries"]:
        if not _has_text(item, "modelId"):
            continue
        inputs = [str(m).lower() for m in item.get("inputModalities") or ()]
        models.append(
            ModelListing(
                id=str(item["modelId"]),
                provider=provider,
                display_name=_text(item.get("modelName")),
                owned_by=_text(item.get("providerName")),
                capabilities=frozenset(_mapped(inputs, {"image": "vision", "audio": "audio"})),
                raw=item,
            )
        )
    return models, None


_RUNTIME_HOST = re.compile(r"^bedrock-runtime((?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?)$")


def _bedrock_control_plane(base: str) -> str:
    """Where ``ListFoundationModels`` lives: ``bedrock.{region}...`` for the runtime host
    ``bedrock-runtime.{region}...``; ``AWS_ENDPOINT_URL_BEDROCK`` when set; else the same
    endpoint (a private or test endpoint serving both)."""
    parts = urlsplit(base)
    match = _RUNTIME_HOST.match(parts.hostname or "")
    if match:
        netloc = "bedrock" + match.group(1) + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc, path=""))
    override = os.environ.get("AWS_ENDPOINT_URL_BEDROCK", "").strip()
    return override.rstrip("/") if override else base


# -- the local provider --------------------------------------------------------------------


def _local_models(client: Any) -> list[ModelListing]:
    from lexigram.ai.llm.model_manager import LLMModelManager

    manager = LLMModelManager(idle_timeout=None, models_dir=client.config.extra.get("models_dir"))
    return [
        ModelListing(
            id=info.name,
            provider=client.provider_name,
            context_window=info.n_ctx,
            owned_by="local",
            raw={"path": str(info.path), "size_bytes": info.size_bytes, "bundled": info.bundled},
        )
        for info in manager.list_local()
    ]


# -- small readers -------------------------------------------------------------------------


def _has_text(item: Any, key: str) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get(key), str) and bool(item[key])


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_int(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _mapped(values: Iterable[Any], names: Mapping[str, str]) -> Iterable[str]:
    return (names[v] for v in values if isinstance(v, str) and v in names)
