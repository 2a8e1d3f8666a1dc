"""The base error every LLM failure derives from."""

from __future__ import annotations

from typing import Any

__all__ = ["LLMError"]


class LLMError(Exception):
    """A failure talking to a language model, returned inside ``Err`` or raised by streams.

    Carries what a caller needs to decide what to do: ``provider``, ``model``, HTTP ``status``,
    the provider's ``request_id``, its own error ``code`` and message, whether the call may be
    ``retryable``, and how long to wait (``retry_after``, seconds) when the provider said so.
    It never carries an API key.
    """

    default_code = "llm_error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        provider_message: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.request_id = request_id
        self.code = code or self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.provider_message = provider_message
        self.details = details or {}

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"provider={self.provider}" if self.provider else "",
                f"model={self.model}" if self.model else "",
                f"status={self.status}" if self.status is not None else "",
                f"request_id={self.request_id}" if self.request_id else "",
            )
            if part
        )
        text = self.message
        if self.provider_message and self.provider_message not in text:
            text = f"{text} (provider said: {self.provider_message})"
        return f"{text} [{where}]" if where else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, "
            f"model={self.model!r}, status={self.status!r}, code={self.code!r}, "
            f"retryable={self.retryable!r}, retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable across processes (routers, caches) with all their fields.
        return (_rebuild_error, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "request_id": self.request_id,
            "code": self.code,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "provider_message": self.provider_message,
            "details": self.details,
        }


def _rebuild_error(cls: type[LLMError], message: str, fields: dict[str, Any]) -> LLMError:
    return cls(message, **fields)
