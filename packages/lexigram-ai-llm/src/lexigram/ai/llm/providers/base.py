"""The shape of a wire family: a codec (pure translation, no I/O) and profiles (data).

A **codec** turns a provider-neutral ``ChatRequest`` into an ``HTTPRequest``, and the provider's
bytes back into ``Completion``/``StreamChunk`` values or a typed ``LLMError``. It never touches
the network, so it is tested from recorded payloads alone.

A **profile** says where a provider lives and how it authenticates: an OpenAI-compatible host is
a profile of the ``openai`` codec, not a class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk, _fast_init
from lexigram.contracts.ai.llm import LLMError

if TYPE_CHECKING:
    from lexigram.ai.llm.config import ClientConfig

__all__ = [
    "CallContext",
    "Codec",
    "Framing",
    "HTTPRequest",
    "ProviderProfile",
    "RequestSigner",
    "StreamDecoder",
]


class Framing(StrEnum):
    """How a streamed response body is cut into events before the codec sees them."""

    SSE = "sse"  # events are ``SSEEvent`` (lexigram.ai.llm._framing)
    NDJSON = "ndjson"  # events are one JSON line each, as ``bytes``
    AWS_EVENTSTREAM = "aws-eventstream"  # events are ``EventStreamMessage`` (bedrock codec)


@_fast_init  # built once per request: fields stored without object.__setattr__
@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """One HTTP request, fully formed except for authentication."""

    method: str
    url: str
    # Not in the repr: once the client has added them, headers hold the API key.
    headers: dict[str, str] = field(repr=False)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a codec may know about the call besides the request itself.

    ``base_url`` is already resolved (config ``api_base``, environment, or the profile's);
    ``options`` holds the config's ``extra`` merged over the profile's quirks.
    """

    provider: str
    model: str
    base_url: str
    profile: ProviderProfile
    # Not in the repr: options may carry credentials (a Vertex access token, say).
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)


class StreamDecoder(Protocol):
    """Stateful decoder for one streamed response.

    ``feed`` takes one framed event and returns the chunks it yields (often none or one); it
    raises ``StreamError`` (or another ``LLMError`` for an error event) when the event cannot be
    decoded or reports a failure. ``done`` turns true once the provider's terminal event was
    seen. ``finish`` is called at end of body: it returns any last chunks, and raises
    ``StreamError`` when the terminal event never came (a truncated stream is never silent).
    """

    @property
    def done(self) -> bool: ...

    def feed(self, event: Any) -> list[StreamChunk]: ...

    def finish(self) -> list[StreamChunk]: ...


class Codec(Protocol):
    """One wire protocol, as pure functions."""

    name: str
    framing: Framing

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The HTTP request for ``request`` (URL from ``ctx.base_url``; no auth headers)."""
        ...

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """A ``Completion`` from a successful non-streamed body; ``LLMError`` when it is not
        one (malformed JSON, an error object in a 200, a safety block)."""
        ...

    def stream_decoder(self, ctx: CallContext) -> StreamDecoder:
        """A fresh decoder for one streamed response."""
        ...

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """The typed error for a non-2xx answer, from status and the provider's error type."""
        ...


# A hook that finishes a request for providers whose authentication is more than a header:
# SigV4 signing (Bedrock), OAuth tokens (Vertex). It receives the request with the static
# headers already set and returns the request to send.
RequestSigner = Callable[[HTTPRequest, "CallContext"], Awaitable[HTTPRequest]]


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """Where a provider lives and how to talk to it. Data, not behaviour.

    - ``codec``: name of the wire family in the codec table (``openai``, ``anthropic``...).
    - ``base_url``: default base URL with the meaning the official SDK gives it; may contain
      ``{placeholders}`` filled from the config's ``extra`` or ``base_url_env``-style variables
      (``{account_id}`` for Cloudflare).
    - ``api_key_env``: environment variables tried in order for the key.
    - ``auth``: ``bearer`` (Authorization: Bearer KEY), ``header`` (``auth_header``: KEY),
      ``none``, or ``custom`` (``signer_factory`` builds a ``RequestSigner``).
    - ``placeholder_env``: environment variables tried, in order, for each ``{placeholder}``
      of ``base_url`` not given in the config's ``extra`` (``{"region": ("AWS_REGION",)}``).
    - ``quirks``: codec-specific knobs, overridable per client through ``ClientConfig.extra``.
    - ``capabilities``: ``stream``, ``tools``, ``thinking``, ``json_schema``, ``json_object``,
      ``vision``, ``documents``.
    - ``extra``: the ``pip install lexigram-ai-llm[extra]`` this provider needs, if any.
    - ``unreachable_hint``: the advice ending the error when the server cannot be reached.
    """

    name: str
    codec: str
    base_url: str | None = None
    api_key_env: tuple[str, ...] = ()
    base_url_env: tuple[str, ...] = ()
    placeholder_env: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    auth: str = "bearer"
    auth_header: str = "Authorization"
    requires_key: bool = True
    default_model: str | None = None
    default_headers: Mapping[str, str] = field(default_factory=dict)
    quirks: Mapping[str, Any] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset({"stream", "tools"})
    extra: str | None = None
    signer_factory: Callable[[ClientConfig, ProviderProfile], RequestSigner] | None = None
    description: str = ""
    unreachable_hint: str = "check api_base and the network"
