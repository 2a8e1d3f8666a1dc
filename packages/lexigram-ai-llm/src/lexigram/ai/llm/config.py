"""``ClientConfig``: the ``ai_llm`` configuration section.

Values come, highest first, from explicit arguments, ``LEX_AI_LLM__*`` environment variables,
``application.yaml`` (and its profile file), then the defaults below. The API key may also come
from the provider's conventional environment variable (``OPENAI_API_KEY``...), resolved by the
client when it is built.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from lexigram.ai.llm.exceptions import ConfigurationError
from lexigram.config import SectionSettings
from lexigram.contracts.ai.thinking import ThinkingConfig
from lexigram.validation import safe_url

__all__ = ["ClientConfig", "ThinkingConfig", "url_from_env"]


class ClientConfig(SectionSettings):
    """Settings for one LLM client.

    ``provider`` is any registered provider name (``None``: ``openai`` when ``api_key`` is set,
    else the first provider whose key is in the environment, else the embedded ``local``
    model). ``model`` may be written ``"provider/model"``.
    """

    __section__: ClassVar[str] = "ai_llm"

    enabled: bool = True
    provider: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    api_base: str | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    enable_cache: bool = False
    cache_ttl: float = Field(default=3600.0, gt=0)
    # Cached answers are always scoped by provider and base URL; with this also by a short,
    # non-reversible fingerprint of the API key (a cache shared by several tenants).
    cache_per_api_key: bool = False
    thinking: ThinkingConfig | None = None
    # Provider prompt caching for every call ("auto" marks system, tools and the conversation
    # so far); ``prompt_cache_ttl`` is Anthropic's "5m" (default) or "1h". Per call likewise.
    prompt_cache: Literal["auto"] | None = None
    prompt_cache_ttl: Literal["5m", "1h"] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    # OpenTelemetry GenAI spans and metrics (the ``otel`` extra): ``None`` emits them when an
    # OTel SDK is set up globally, ``True`` always (through the global API), ``False`` never.
    # Message content goes on spans only with ``telemetry_capture_content`` or
    # OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
    telemetry: bool | None = None
    telemetry_capture_content: bool = False

    # Policies. Retries count attempts after the first; the breaker is per provider and model.
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_base_delay: float = Field(default=0.5, ge=0)
    retry_max_delay: float = Field(default=20.0, ge=0)
    max_retry_after: float = Field(default=60.0, ge=0)
    stream_idle_timeout: float = Field(default=60.0, gt=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_recovery_timeout: float = Field(default=30.0, ge=0)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    rate_limit_wait: bool = True
    max_connections: int = Field(default=100, ge=1)
    context_window: int | None = Field(default=None, gt=0)

    # Transport limits: what a provider may make us hold. Each breach is a ResponseLimitError
    # whose ``code`` names the field to raise. Response size counts decompressed bytes (an
    # embeddings batch of 2,048 x 1,536 floats is about 40 MB of JSON).
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_line_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)  # one SSE/NDJSON line
    max_error_body_bytes: int = Field(default=64 * 1024, ge=256)  # read of a 4xx/5xx body
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)  # one response header line

    @field_validator("api_base")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("api_base must be an http:// or https:// URL")
        return value.rstrip("/")

    @classmethod
    def parse(cls, spec: str | ClientConfig | None = None, **overrides: Any) -> ClientConfig:
        """A config from a ``"provider/model"`` string, an existing config, or nothing.

        ``"openai/gpt-4o"`` is provider ``openai``, model ``gpt-4o``; anything after the first
        slash stays in the model (``"openrouter/anthropic/claude-sonnet-4"``). A string with no
        slash is a provider name.
        """
        if isinstance(spec, ClientConfig):
            return spec.model_copy(update=overrides) if overrides else spec
        if spec is None:
            return cls(**overrides)
        provider, _, model = spec.partition("/")
        values: dict[str, Any] = {"provider": provider.strip()}
        if model:
            values["model"] = model.strip()
        values.update(overrides)
        return cls(**values)

    def __repr__(self) -> str:
        # Only what is useful in a log line; the key shows as set or not, never its value,
        # and the base URL without its userinfo or credential query parameters.
        return (
            f"ClientConfig(provider={self.provider!r}, model={self.model!r}, "
            f"api_base={None if self.api_base is None else safe_url(self.api_base)!r}, "
            f"api_key={'set' if self.api_key else None}, "
            f"timeout={self.timeout!r})"
        )

    __str__ = __repr__


def url_from_env(
    name: str, value: str, *, allow_bare_host: bool, default: str | None = None
) -> str:
    """A base URL read from environment variable ``name``, validated like ``api_base``.

    A bare ``host[:port]`` (Ollama's ``OLLAMA_HOST`` convention) is accepted only with
    ``allow_bare_host``, that is when no credential goes out: it becomes ``http://host``, with
    the port of ``default`` when it names none. Anything else needs ``http://`` or
    ``https://``; an API key is never sent to a URL whose scheme was guessed.
    """
    value = value.strip()
    if "://" not in value:
        if not allow_bare_host:
            raise ConfigurationError(
                f"{name} has no scheme: write https://... (or http://... for a local "
                f"server). A scheme is required where an API key is sent, so that it never "
                f"goes out in clear text by guess"
            )
        url = f"http://{value}"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ConfigurationError(f"{name} is not a host[:port] or URL") from None
        if not parts.hostname:
            raise ConfigurationError(f"{name} is not a host[:port] or URL")
        default_port = urlsplit(default).port if default else None
        if port is None and default_port is not None:
            url = f"http://{parts.netloc}:{default_port}{parts.path}"
        return url.rstrip("/")
    if not value.lower().startswith(("http://", "https://")):
        raise ConfigurationError(f"{name} must be an http:// or https:// URL")
    return value.rstrip("/")
