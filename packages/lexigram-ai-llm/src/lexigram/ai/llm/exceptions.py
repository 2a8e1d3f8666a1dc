"""The typed errors a caller sees. Expected failures come back inside ``Err``; streams raise them.

Mapping from HTTP status and the provider's error type lives in ``error_for_status`` (shared by
every wire family) and each codec's ``map_error``; never from substrings of messages.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from lexigram.contracts.ai.llm import LLMError

__all__ = [
    "ConfigurationError",
    "ExtractionError",
    "ExtractionMaxRetriesError",
    "ExtractionParseError",
    "ExtractionValidationError",
    "InvalidInputError",
    "InvalidRequestError",
    "LLMAuthenticationError",
    "LLMBudgetExceededError",
    "LLMContentFilterError",
    "LLMError",
    "LLMModelNotFoundError",
    "LLMQuotaExceededError",
    "LLMRateLimitError",
    "LLMTimeoutError",
    "MaxStepsExceededError",
    "MissingExtraError",
    "ProviderConnectionError",
    "ProviderError",
    "RedirectRefusedError",
    "ResponseLimitError",
    "StreamError",
    "TokenLimitError",
    "ToolFailureLimitError",
    "ToolLoopError",
    "UnknownProviderError",
    "UnsupportedCapabilityError",
    "credential_values",
    "error_for_status",
    "parse_retry_after",
    "redact_error",
    "redact_text",
]


class InvalidRequestError(LLMError):
    """The provider rejected the request as malformed (400/422). Fix the request; no retry."""

    default_code = "invalid_request"


class TokenLimitError(InvalidRequestError):
    """The prompt plus ``max_tokens`` exceed the model's context window."""

    default_code = "context_length_exceeded"


class UnsupportedCapabilityError(InvalidRequestError):
    """The model cannot take this request (an image for a text-only model, tools for a model
    without function calling, a JSON-schema response format...), as the model table knows;
    refused before any network call. ``capability`` names what is missing (one of
    ``pricing.CAPABILITIES``), ``model`` the model."""

    default_code = "unsupported_capability"

    @property
    def capability(self) -> str | None:
        """The capability the model lacks."""
        value = self.details.get("capability")
        return value if isinstance(value, str) else None


class InvalidInputError(InvalidRequestError, ValueError):
    """The caller's own input cannot make a request (``messages=None``, ``content=123``,
    ``temperature=3``...); refused before any network call. ``field`` names the culprit
    (``"messages[1].content"``). Returned as ``Err`` by ``complete()``, raised by a stream on
    first iteration; also a ``ValueError`` for code that builds messages by hand."""

    default_code = "invalid_input"

    @property
    def field(self) -> str | None:
        """Where the bad value is, as ``messages[1].content`` or ``temperature``."""
        value = self.details.get("field")
        return value if isinstance(value, str) else None

    @classmethod
    def at(cls, field: str, problem: str) -> InvalidInputError:
        """``field: problem`` with ``field`` kept in ``details``."""
        return cls(f"{field}: {problem}", details={"field": field})


class ToolArgumentsError(LLMError, ValueError):
    """A tool call's arguments are not a JSON object (``ToolCall.parsed_arguments()``): the
    model wrote broken JSON, or the answer was cut short. ``details`` holds the call's
    ``tool_call_id`` and ``tool_name``. Also a ``ValueError``."""

    default_code = "invalid_tool_arguments"


class LLMContentFilterError(LLMError):
    """The provider's content policy blocked the prompt or the answer."""

    default_code = "content_filter"


class LLMAuthenticationError(LLMError):
    """The API key is missing, wrong or lacks permission (401/403)."""

    default_code = "authentication"


class LLMQuotaExceededError(LLMError):
    """The account is out of credit or quota (402, ``insufficient_quota``). Waiting won't help."""

    default_code = "insufficient_quota"


class LLMBudgetExceededError(LLMQuotaExceededError):
    """The call's estimate would take its ``Budget`` past ``max_cost`` or ``max_tokens``; no
    call was made. ``details`` holds the scope and the estimate."""

    default_code = "budget_exceeded"


class LLMModelNotFoundError(LLMError):
    """The model (or deployment) does not exist or is not available to this key (404)."""

    default_code = "model_not_found"


class ProviderError(LLMError):
    """The provider failed on its side (5xx, overloaded). Retryable."""

    default_code = "provider_error"
    default_retryable = True


class LLMRateLimitError(ProviderError):
    """Too many requests (429), or a local rate limit refused the call. See ``retry_after``."""

    default_code = "rate_limited"


class ProviderConnectionError(ProviderError):
    """The provider could not be reached (DNS, refused connection, TLS, reset)."""

    default_code = "connection_error"


class LLMTimeoutError(ProviderError):
    """No answer within the configured timeout."""

    default_code = "timeout"


class StreamError(LLMError):
    """A stream broke: cut before its terminal event, an undecodable chunk, an error event,
    or no chunk within the idle timeout. Never a silent truncation."""

    default_code = "stream_error"


class ResponseLimitError(LLMError):
    """The provider's response broke a size limit of the transport (``code`` names the
    ``ClientConfig`` field: ``max_response_bytes``, ``max_line_bytes``, ``max_header_bytes``).
    Reading stopped at the limit; raise the field if the provider is trusted."""

    default_code = "response_limit"


class RedirectRefusedError(LLMError):
    """The provider answered with a redirect the transport does not follow (to another
    origin, from https to http, or for a request that is not GET/HEAD). Fix the base URL."""

    default_code = "redirect_refused"


class ExtractionError(LLMError):
    """Structured extraction failed; ``raw_output`` is the model's last answer and ``usage``
    the tokens spent over every attempt."""

    default_code = "extraction_error"

    def __init__(self, message: str, *, raw_output: str = "", usage: Any = None, **kw: Any):
        super().__init__(message, **kw)
        self.raw_output = raw_output
        self.usage = usage

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "raw_output": self.raw_output, "usage": self.usage}


class ExtractionParseError(ExtractionError):
    """The answer held no parsable JSON."""

    default_code = "extraction_parse_error"


class ExtractionValidationError(ExtractionError):
    """The answer parsed but did not match the schema or model."""

    default_code = "extraction_validation_error"


class ExtractionMaxRetriesError(ExtractionError):
    """Every attempt failed; ``last_error`` says how the last one did."""

    default_code = "extraction_max_retries"

    def __init__(
        self, message: str, *, last_error: ExtractionError | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.last_error = last_error

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "last_error": self.last_error}


class ToolLoopError(LLMError):
    """``run_tools`` stopped before the model gave a final answer; ``run`` is the partial
    ``ToolRun`` (every step so far, the history to continue from, usage summed)."""

    default_code = "tool_loop"

    def __init__(self, message: str, *, run: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.run = run

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "run": self.run}


class MaxStepsExceededError(ToolLoopError):
    """The model still asked for tools after ``max_steps`` steps."""

    default_code = "max_steps_exceeded"


class ToolFailureLimitError(ToolLoopError):
    """Too many tool calls failed in a row (invalid arguments, a tool that raised)."""

    default_code = "tool_failure_limit"


# -- programming and configuration errors: raised at once, never returned ------------------


class ConfigurationError(ValueError):
    """The client is configured wrongly (missing key, bad base URL...). The message says how
    to fix it."""


class UnknownProviderError(ConfigurationError, KeyError):
    """No provider is registered under this name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown provider"


class MissingExtraError(ImportError):
    """A provider needs an optional dependency; the message names the ``pip install``."""


# -- shared mapping helpers ----------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP date) or
    the ``x-ratelimit-reset-*`` headers (``1s``, ``6m0s``, ``250ms`` or seconds).

    An unreadable value (a malformed date, ``nan``, ``inf``) is ignored, never raised."""
    from lexigram.resilience._headers import parse_duration  # error path only

    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after-ms")
    if value:
        millis = _finite(value)
        if millis is not None:
            return max(0.0, millis / 1000.0)
    value = lower.get("retry-after")
    if value:
        seconds = _finite(value)
        if seconds is not None:
            return max(0.0, seconds)
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            return max(0.0, parsed.timestamp() - (time.time() if now is None else now))
    resets = [
        parse_duration(lower[k])
        for k in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-ratelimit-reset")
        if k in lower
    ]
    found = [r for r in resets if r is not None]
    return max(found) if found else None


def _finite(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


_STATUS_CLASSES: dict[int, type[LLMError]] = {
    400: InvalidRequestError,
    401: LLMAuthenticationError,
    402: LLMQuotaExceededError,
    403: LLMAuthenticationError,
    404: LLMModelNotFoundError,
    408: LLMTimeoutError,
    409: ProviderError,
    413: TokenLimitError,
    422: InvalidRequestError,
    429: LLMRateLimitError,
}

_ACTIONS: dict[type[LLMError], str] = {
    InvalidRequestError: "The provider rejected the request; check the model's parameters",
    TokenLimitError: "The prompt is too long for the model's context window; shorten it or "
    "lower max_tokens",
    LLMAuthenticationError: "Authentication failed; check the API key (config api_key or the "
    "provider's environment variable) and its permissions",
    LLMQuotaExceededError: "The account is out of quota or credit; check billing",
    LLMModelNotFoundError: "The model was not found; check the model name and that this key "
    "can use it",
    LLMRateLimitError: "Rate limited by the provider; retry after the indicated delay",
    LLMTimeoutError: "The provider did not answer in time",
    ProviderError: "The provider failed on its side; retrying may help",
    LLMContentFilterError: "The provider's content policy blocked this request or answer",
}


def error_for_status(
    status: int,
    *,
    kind: type[LLMError] | None = None,
    provider: str,
    model: str | None,
    headers: Mapping[str, str] | None = None,
    provider_message: str | None = None,
    code: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> LLMError:
    """The typed error for an HTTP failure.

    Codecs pass ``kind`` when the provider's own error type decides it (context length,
    content policy, quota); otherwise the status decides. ``retry_after`` comes from headers.
    """
    headers = headers or {}
    if kind is None:
        kind = _STATUS_CLASSES.get(status) or (ProviderError if status >= 500 else LLMError)
    retryable = kind.default_retryable or status in (408, 409, 429) or status >= 500
    if kind in (
        InvalidRequestError,
        TokenLimitError,
        LLMAuthenticationError,
        LLMQuotaExceededError,
        LLMModelNotFoundError,
        LLMContentFilterError,
    ):
        retryable = False
    action = _ACTIONS.get(kind, f"The provider answered HTTP {status}")
    return kind(
        action,
        provider=provider,
        model=model,
        status=status,
        request_id=request_id,
        code=code,
        retryable=retryable,
        retry_after=parse_retry_after(headers) if retryable else None,
        provider_message=provider_message,
        details=details,
    )


# -- redaction -----------------------------------------------------------------------------

#: Secrets shorter than this are replaced only where they stand as a whole token: a local
#: server's dummy key ``"x"`` must not turn ``max_tokens`` into ``ma***_tokens``.
SHORT_SECRET = 8
_MASK = "***"
_TOKEN_CHARS = "A-Za-z0-9_-"


def _secret_pattern(secrets: Iterable[str | None]) -> re.Pattern[str] | None:
    """One pattern for every secret: long ones anywhere, short ones as whole tokens."""
    unique = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not unique:
        return None
    alternatives = [
        re.escape(s)
        if len(s) >= SHORT_SECRET
        else rf"(?<![{_TOKEN_CHARS}]){re.escape(s)}(?![{_TOKEN_CHARS}])"
        for s in unique
    ]
    return re.compile("|".join(alternatives))


_CREDENTIAL_NAME = re.compile(
    r"(^|[^a-z])(key|token|secret|password|passwd|credentials?|authorization|cookie)$"
)


def credential_values(options: Mapping[str, Any]) -> list[str]:
    """The string values of credential-like names in ``options`` and in its ``headers``
    mapping (``access_token``, ``aws_secret_access_key``, ``Authorization``...), with any
    ``Bearer``/``Basic`` scheme word removed: what ``redact_error`` must scrub."""
    found: list[str] = []
    headers = options.get("headers")
    for mapping in (options, headers if isinstance(headers, Mapping) else {}):
        for name, value in mapping.items():
            if not isinstance(value, str) or not value:
                continue
            if _CREDENTIAL_NAME.search(str(name).lower()):
                found.append(value)
                scheme, _, rest = value.partition(" ")
                if rest and scheme.lower() in ("bearer", "basic", "token"):
                    found.append(rest.strip())
    return found


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret shown as ``***`` (short secrets only as whole tokens)."""
    pattern = _secret_pattern(secrets)
    return text if pattern is None else pattern.sub(_MASK, text)


def redact_error(error: LLMError, secrets: Iterable[str | None]) -> LLMError:
    """Scrub ``secrets`` from ``error`` in place and return it.

    Every string the error holds is scrubbed: message, ``provider_message``, ``code``,
    ``request_id``, the nested ``details`` (keys and values), the fields of subclasses
    (``raw_output``), errors it wraps (``last_error``) and the LLM errors of its
    ``__cause__``/``__context__`` chain. A chained exception of another type that would show a
    secret (in its text or arguments) is cut from the chain, since its text cannot be
    rewritten safely. Long secrets are replaced wherever they occur; secrets shorter than
    ``SHORT_SECRET`` characters only where they stand as a whole token, so that our own words
    are never garbled. This runs on error paths only.
    """
    pattern = _secret_pattern(secrets)
    if pattern is not None:
        _scrub_error(error, pattern, {})
    return error


# What was decided for each exception object already visited: itself, or ``None`` when it
# leaks and is cut from the chain (one object is often both ``__cause__`` and ``__context__``).
_Seen = dict[int, BaseException | None]


def _scrub_value(value: Any, pattern: re.Pattern[str], seen: _Seen) -> Any:
    if isinstance(value, str):
        return pattern.sub(_MASK, value)
    if isinstance(value, LLMError):
        _scrub_error(value, pattern, seen)
        return value
    if isinstance(value, Mapping):
        return {
            _scrub_value(k, pattern, seen): _scrub_value(v, pattern, seen) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(v, pattern, seen) for v in value)
    return value


def _scrub_error(error: LLMError, pattern: re.Pattern[str], seen: _Seen) -> None:
    if id(error) in seen:
        return
    seen[id(error)] = error
    for name, value in list(vars(error).items()):
        if name.startswith("__"):
            continue
        scrubbed = _scrub_value(value, pattern, seen)
        if scrubbed is not value:
            setattr(error, name, scrubbed)
    error.args = tuple(_scrub_value(arg, pattern, seen) for arg in error.args)
    error.__cause__ = _scrub_link(error.__cause__, pattern, seen)
    context = _scrub_link(error.__context__, pattern, seen)
    if context is None and error.__context__ is not None:
        error.__suppress_context__ = True
    error.__context__ = context


def _scrub_link(
    link: BaseException | None, pattern: re.Pattern[str], seen: _Seen
) -> BaseException | None:
    """``link`` made safe to show, or ``None`` when it would leak and cannot be rewritten."""
    if link is None:
        return None
    if isinstance(link, LLMError):
        _scrub_error(link, pattern, seen)
        return link
    if id(link) in seen:
        return seen[id(link)]
    try:
        shown = f"{link}\n{link!r}\n" + "\n".join(repr(arg) for arg in link.args)
    except Exception:  # an exception whose __str__ fails cannot be checked: drop it
        shown = None
    if shown is None or pattern.search(shown):
        seen[id(link)] = None
        return None
    seen[id(link)] = link
    link.__cause__ = _scrub_link(link.__cause__, pattern, seen)
    context = _scrub_link(link.__context__, pattern, seen)
    if context is None and link.__context__ is not None:
        link.__suppress_context__ = True
    link.__context__ = context
    return link
