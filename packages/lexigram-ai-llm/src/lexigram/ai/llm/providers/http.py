"""``HTTPLLMClient``: one client class for every HTTP provider, driven by a codec and a profile."""

from __future__ import annotations

import os
import string
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from lexigram.ai.llm._framing import NDJSONDecoder, SSEDecoder
from lexigram.ai.llm._userfiles import stored_key
from lexigram.ai.llm.client import AbstractLLMClient, cache_scope_for
from lexigram.ai.llm.config import ClientConfig, url_from_env
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMError,
    ProviderConnectionError,
    credential_values,
    redact_error,
)
from lexigram.ai.llm.providers._codec_common import not_json_error
from lexigram.ai.llm.providers.base import (
    CallContext,
    Codec,
    Framing,
    HTTPRequest,
    ProviderProfile,
    RequestSigner,
)
from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk
from lexigram.validation import safe_url, url_secrets

if TYPE_CHECKING:
    from lexigram.ai.llm._http1 import HTTP1Transport
    from lexigram.ai.llm._transport import Framer, Response

__all__ = ["HTTPLLMClient", "request_id_from"]

_REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "x-amzn-requestid",
    "x-goog-request-id",
    "cf-ray",
)


def request_id_from(headers: Mapping[str, str]) -> str | None:
    """The provider's request id from the usual response headers."""
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


class HTTPLLMClient(AbstractLLMClient):
    """A client for one provider reached over HTTP. Built by ``create_llm_client``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        profile: ProviderProfile,
        codec: Codec,
        **policies: Any,
    ) -> None:
        super().__init__(config, **policies)
        self.profile = profile
        self.codec = codec
        self.provider_name = profile.name
        self._default_model = config.model or profile.default_model or ""
        options: dict[str, Any] = {**profile.quirks, **config.extra}
        self._options = options
        self._api_key = _resolve_api_key(config, profile)
        self._base_url = _resolve_base_url(config, profile, options, self._api_key)
        self._headers = self._static_headers(options)
        self._signer: RequestSigner | None = (
            profile.signer_factory(config, profile) if profile.signer_factory else None
        )
        self._contexts: dict[str, CallContext] = {}
        self._transport: HTTP1Transport | None = None
        # A codec with a retry for rejected streams keeps its per-client state here.
        make_fallback = getattr(codec, "stream_fallback", None)
        self._stream_fallback: Any = make_fallback() if make_fallback is not None else None
        self._cache_scope: str | None = None
        self._call_context_hook: tuple[Any, Any] = (None, None)  # (codec, its call_context)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider_name!r}, "
            f"model={self._default_model!r}, base_url={safe_url(self._base_url)!r})"
        )

    # -- wiring ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The resolved base URL requests go to."""
        return self._base_url

    @property
    def cache_scope(self) -> str:
        """Provider and resolved base URL (no userinfo), plus a fingerprint of the resolved
        API key with ``cache_per_api_key``: cached answers never cross hosts (or tenants)."""
        scope = self._cache_scope
        if scope is None:
            key = self._api_key if self.config.cache_per_api_key else None
            scope = self._cache_scope = cache_scope_for(self.provider_name, self._base_url, key)
        return scope

    def _static_headers(self, options: Mapping[str, Any]) -> dict[str, str]:
        # Accept-Encoding here saves the transport a copy of the headers on every request.
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip, deflate",
            **self.profile.default_headers,
        }
        headers.update(options.get("headers", {}))
        key = self._api_key
        if key and self.profile.auth == "bearer":
            headers[self.profile.auth_header] = f"Bearer {key}"
        elif key and self.profile.auth == "header":
            headers[self.profile.auth_header] = key
        return headers

    def _context(self, model: str) -> CallContext:
        ctx = self._contexts.get(model)
        if ctx is None:
            ctx = CallContext(
                self.provider_name, model, self._base_url, self.profile, self._options
            )
            self._contexts[model] = ctx
        return ctx

    @property
    def transport(self) -> HTTP1Transport:
        """The transport this client sends through (created on first use)."""
        transport = self._transport
        if transport is None:
            from lexigram.ai.llm._http1 import HTTP1Transport
            from lexigram.ai.llm._transport import TransportLimits

            cfg = self.config
            transport = self._transport = HTTP1Transport(
                timeout=cfg.timeout,
                idle_timeout=cfg.stream_idle_timeout,
                max_connections=cfg.max_connections,
                limits=TransportLimits.from_config(cfg),
                connection_error=self._connection_error,
            )
        return transport

    def auth_headers(self) -> dict[str, str]:
        """A copy of the headers every request of this client carries, authentication
        included (for a side request such as ``GET /models`` through ``transport``)."""
        return dict(self._headers)

    def _framer(self) -> Framer:
        framing = self.codec.framing
        if framing is Framing.SSE:
            return SSEDecoder(self.config.max_line_bytes)
        if framing is Framing.NDJSON:
            return NDJSONDecoder(self.config.max_line_bytes)
        if framing is Framing.AWS_EVENTSTREAM:
            from lexigram.ai.llm.providers.bedrock import EventStreamFramer

            return EventStreamFramer()
        raise ConfigurationError(f"Codec {self.codec.name!r} declares unknown framing {framing!r}")

    async def _prepare(
        self, request: ChatRequest, *, stream: bool, ctx: CallContext | None = None
    ) -> tuple[HTTPRequest, CallContext]:
        http, ctx = self._encoded(request, stream=stream, ctx=ctx)
        if self._signer is not None:
            http = await self._signer(http, ctx)
        return http, ctx

    def _encoded(
        self, request: ChatRequest, *, stream: bool, ctx: CallContext | None = None
    ) -> tuple[HTTPRequest, CallContext]:
        """``_prepare`` up to the signer: the encoded request with this client's headers."""
        self._check_key()
        if not request.model:
            raise ConfigurationError(
                f"No model given for provider {self.provider_name!r}: pass model=... or set "
                f"ClientConfig(model=...) / LEX_AI_LLM__MODEL"
            )
        if ctx is None:
            ctx = self._context(request.model)
            if stream and self._stream_fallback is not None:
                ctx = self._stream_fallback.context(ctx)
            codec = self.codec
            hook = self._call_context_hook
            if hook[0] is not codec:  # (a missing attribute is costly to ask for each call)
                hook = self._call_context_hook = (codec, getattr(codec, "call_context", None))
            per_request = hook[1]
            if per_request is not None:  # what the decoders must know about this request
                ctx = per_request(request, ctx)
        try:
            http = self.codec.encode(request, ctx, stream=stream)
        except orjson.JSONEncodeError as exc:  # a caller's value the body cannot hold
            raise not_json_error(request, ctx, exc) from None
        http.headers.update(self._headers)
        return http, ctx

    def _check_key(self) -> None:
        if self.profile.requires_key and not self._api_key and self.profile.auth != "custom":
            names = " or ".join(self.profile.api_key_env) or "api_key"
            raise ConfigurationError(
                f"No API key for provider {self.provider_name!r}: set {names} in the "
                f"environment, LEX_AI_LLM__API_KEY, or ClientConfig(api_key=...)"
            )

    def call_context(self, model: str) -> CallContext:
        """The codec context for ``model`` on this client (base URL, profile, options)."""
        return self._context(model)

    async def send_encoded(
        self,
        http: HTTPRequest,
        ctx: CallContext,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> bytes:
        """Send a request another codec built (an embedding batch) the way ``complete``
        sends: this client's headers and signer, its transport, rate-limit headers read,
        a non-2xx answer mapped by this client's codec; the 2xx body, or ``LLMError``."""
        self._check_key()
        http.headers.update(self._headers)
        if self._signer is not None:
            http = await self._signer(http, ctx)
        transport = self._transport or self.transport
        try:
            response = await transport.send(http, timeout=timeout, deadline=deadline)
        except LLMError as error:
            self._redact(self._attributed(error, ctx.model))
            raise
        headers = response.headers
        if self.rate_limiter is not None:
            self.rate_limiter.update_from_headers(self.provider_name, ctx.model, headers)
        if response.status >= 400:
            raise self._redact(self._mapped_error(response.status, headers, response.body, ctx))
        return response.body

    def redact(self, error: LLMError) -> LLMError:
        """``error`` with every credential this client holds masked (see ``_redact``)."""
        return self._redact(error)

    def _redact(self, error: LLMError) -> LLMError:
        # Every credential this client holds: the key, the base URL's userinfo and query
        # credentials, and credential-like options and extra headers (see redact_error).
        return redact_error(
            error,
            (self._api_key, *url_secrets(self._base_url), *credential_values(self._options)),
        )

    # -- the two hooks ---------------------------------------------------------------------

    async def _do_complete(self, request: ChatRequest) -> Completion:
        if self._signer is None:
            http, ctx = self._encoded(request, stream=False)
        else:
            http, ctx = await self._prepare(request, stream=False)
        transport = self._transport or self.transport
        try:
            response = await transport.send(
                http, timeout=request.timeout, deadline=request.deadline
            )
        except LLMError as error:
            self._redact(self._attributed(error, request.model))
            raise
        headers = response.headers
        if self.rate_limiter is not None:
            self.rate_limiter.update_from_headers(self.provider_name, request.model, headers)
        if response.status >= 400:
            raise self._redact(self._mapped_error(response.status, headers, response.body, ctx))
        try:
            return self.codec.decode(response.body, headers, ctx)
        except LLMError as error:
            raise self._redact(error) from None

    async def _open_stream(
        self, request: ChatRequest, ctx: CallContext | None = None
    ) -> tuple[Response, CallContext]:
        """Send a streamed request; the response (2xx) and its context, or a typed error."""
        http, ctx = await self._prepare(request, stream=True, ctx=ctx)
        transport = self._transport or self.transport
        try:
            response = await transport.send(
                http, stream=True, timeout=request.timeout, deadline=request.deadline
            )
        except LLMError as error:
            self._redact(self._attributed(error, request.model))
            raise
        if self.rate_limiter is not None:
            self.rate_limiter.update_from_headers(
                self.provider_name, request.model, response.headers
            )
        fallback = self._stream_fallback
        if response.status < 400:
            if fallback is not None:
                fallback.opened(ctx)
            return response, ctx
        rejected = self._redact(
            self._mapped_error(response.status, response.headers, response.body, ctx)
        )
        retry_ctx = fallback.retry_context(response.status, ctx) if fallback else None
        if retry_ctx is not None:
            # The codec knows a variant of the request this host may accept (OpenAI-compatible
            # hosts that reject ``stream_options``): tried once; its failure reports the first.
            try:
                return await self._open_stream(request, retry_ctx)
            except LLMError:
                raise rejected from None
        raise rejected

    async def _do_stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        response, ctx = await self._open_stream(request)
        try:
            decoder = self.codec.stream_decoder(ctx)
            framer = self._framer()
            feed = decoder.feed
            batches = response.events(framer)
            try:
                async for events in batches:
                    for event in events:
                        for chunk in feed(event):
                            yield chunk
                    if decoder.done:
                        break
                if not decoder.done:
                    for event in framer.finish():
                        for chunk in feed(event):
                            yield chunk
                for chunk in decoder.finish():
                    yield chunk
            except LLMError as error:
                self._redact(self._attributed(error, request.model))
                raise
            finally:
                await batches.aclose()
        finally:
            await response.aclose()

    # -- errors ----------------------------------------------------------------------------

    def _mapped_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        error = self.codec.map_error(status, headers, body, ctx)
        if error.request_id is None:
            error.request_id = request_id_from(headers)
        if error.provider is None:
            error.provider = self.provider_name
        if error.model is None:
            error.model = ctx.model
        return error

    def _attributed(self, error: LLMError, model: str) -> LLMError:
        if error.provider is None:
            error.provider = self.provider_name
        if error.model is None:
            error.model = model
        return error

    def _connection_error(self, exc: BaseException) -> LLMError:
        # The transport's one mapping of an unreachable server calls this for the wording.
        return ProviderConnectionError(
            f"Could not reach {self.provider_name} at {safe_url(self._base_url)} "
            f"({type(exc).__name__}); {self.profile.unreachable_hint}",
            provider=self.provider_name,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._transport is not None:
            await self._transport.aclose()


def _resolve_api_key(config: ClientConfig, profile: ProviderProfile) -> str | None:
    if config.api_key is not None:
        return config.api_key.get_secret_value() or None
    for name in profile.api_key_env:
        value = os.environ.get(name)
        if value:
            return value
    # A key stored by ``lexigram-llm keys set`` comes after the environment.
    return stored_key(profile.name, profile.api_key_env)


def _resolve_base_url(
    config: ClientConfig,
    profile: ProviderProfile,
    options: Mapping[str, Any],
    api_key: str | None,
) -> str:
    url = config.api_base
    if url is None:
        # Validated like ``api_base``; a bare ``host[:port]`` only where no credential
        # goes out (Ollama's ``OLLAMA_HOST`` convention), never a silent plain-http key.
        sends_credentials = bool(api_key) or profile.requires_key or profile.auth == "custom"
        for name in profile.base_url_env:
            found = os.environ.get(name, "").strip()
            if found:
                url = url_from_env(
                    name, found, allow_bare_host=not sends_credentials, default=profile.base_url
                )
                break
    if url is None:
        url = profile.base_url
    if url is None:
        raise ConfigurationError(
            f"Provider {profile.name!r} has no default base URL: set api_base "
            f"(ClientConfig(api_base=...) or LEX_AI_LLM__API_BASE)"
        )
    fields = [name for _, name, _, _ in string.Formatter().parse(url) if name]
    if fields:
        values: dict[str, str] = {}
        for name in fields:
            conventional = f"{profile.name.upper()}_{name.upper()}"
            candidates = (*profile.placeholder_env.get(name, ()), conventional)
            value = options.get(name) or next(
                (os.environ[v] for v in candidates if os.environ.get(v)), None
            )
            if not value:
                raise ConfigurationError(
                    f"Provider {profile.name!r} needs {name!r}: set ClientConfig(extra="
                    f"{{'{name}': ...}}) or the {' or '.join(candidates)} environment variable"
                )
            values[name] = str(value)
        url = url.format(**values)
    return url.rstrip("/")
