"""OAuth bearer tokens for Vertex AI, from google-auth, refreshed off the event loop.

The ``vertex`` profile's ``signer_factory``. Where the token comes from, first match wins:

1. ``ClientConfig(extra={"access_token": ...})``: a token you already have (sent as is).
2. ``ClientConfig(extra={"credentials_file": path})``: a service-account (or other google-auth)
   JSON file.
3. Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS``, the gcloud user
   credentials, or the metadata server on Google Cloud.

google-auth is imported only when a token must be obtained (``pip install
'lexigram-ai-llm[vertex]'``). Loading and refreshing credentials does blocking HTTP, so it runs
in a worker thread (``asyncio.to_thread``), one refresh at a time; the token is reused until
google-auth considers it expired. Token requests use the standard library's HTTP client, so the
extra needs nothing beyond google-auth.
"""

from __future__ import annotations

import asyncio
import functools
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMAuthenticationError,
    MissingExtraError,
    ProviderConnectionError,
)
from lexigram.ai.llm.providers.base import CallContext, HTTPRequest, RequestSigner

if TYPE_CHECKING:
    from lexigram.ai.llm.config import ClientConfig
    from lexigram.ai.llm.providers.base import ProviderProfile

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "GoogleCredentialsSigner",
    "StaticTokenSigner",
    "vertex_signer_factory",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
INSTALL_HINT = "pip install 'lexigram-ai-llm[vertex]'"
TOKEN_TIMEOUT = 30.0


def vertex_signer_factory(config: ClientConfig, profile: ProviderProfile) -> RequestSigner:
    """The request signer for a Vertex client built from ``config``."""
    options: Mapping[str, Any] = {**profile.quirks, **config.extra}
    token = options.get("access_token")
    if token:
        return StaticTokenSigner(_secret(token))
    path = options.get("credentials_file")
    return GoogleCredentialsSigner(
        credentials_file=str(path) if path else None,
        scopes=tuple(options.get("scopes") or (CLOUD_PLATFORM_SCOPE,)),
        timeout=min(config.timeout, TOKEN_TIMEOUT),
    )


def _secret(value: Any) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if callable(getter) else value)


def _with_bearer(request: HTTPRequest, token: str) -> HTTPRequest:
    headers = {**request.headers, "Authorization": f"Bearer {token}"}
    return HTTPRequest(request.method, request.url, headers, request.body)


class StaticTokenSigner:
    """Sends one given access token."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenSigner(token=***)"

    async def __call__(self, request: HTTPRequest, ctx: CallContext) -> HTTPRequest:
        return _with_bearer(request, self._token)


class GoogleCredentialsSigner:
    """Sends a token from google-auth credentials, refreshing them when they expire."""

    __slots__ = ("_credentials", "_file", "_lock", "_lock_loop", "_scopes", "_timeout")

    def __init__(
        self,
        *,
        credentials_file: str | None = None,
        scopes: tuple[str, ...] = (CLOUD_PLATFORM_SCOPE,),
        timeout: float = TOKEN_TIMEOUT,
    ) -> None:
        _google_auth()  # a missing extra fails when the client is built, naming the fix
        self._file = credentials_file
        self._scopes = scopes
        self._timeout = timeout
        self._credentials: Any = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        source = "file" if self._file else "application default credentials"
        return f"GoogleCredentialsSigner(source={source!r}, scopes={self._scopes!r})"

    async def __call__(self, request: HTTPRequest, ctx: CallContext) -> HTTPRequest:
        return _with_bearer(request, await self.token(ctx))

    async def token(self, ctx: CallContext) -> str:
        """A valid access token, loading or refreshing the credentials when needed."""
        credentials = self._credentials
        if credentials is not None and credentials.valid:
            return str(credentials.token)
        async with self._refresh_lock():
            credentials = self._credentials
            if credentials is None:
                credentials = self._credentials = await asyncio.to_thread(self._load)
            if not credentials.valid:
                await asyncio.to_thread(self._refresh, credentials, ctx)
            return str(credentials.token)

    def _refresh_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _load(self) -> Any:
        auth = _google_auth()
        try:
            if self._file:
                credentials = _credentials_from_file(self._file, self._scopes)
            else:
                credentials, _ = auth.default(scopes=self._scopes)
        except (auth.exceptions.DefaultCredentialsError, OSError, ValueError) as exc:
            raise ConfigurationError(
                "No usable Google credentials for Vertex AI "
                f"({type(exc).__name__}: {exc}). Set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service-account file, run `gcloud auth application-default login`, or pass "
                "ClientConfig(extra={'credentials_file': ...}) or {'access_token': ...}"
            ) from exc
        return credentials

    def _refresh(self, credentials: Any, ctx: CallContext) -> None:
        auth = _google_auth()
        try:
            credentials.refresh(_transport()(self._timeout))
        except auth.exceptions.RefreshError as exc:
            raise LLMAuthenticationError(
                "Could not get an OAuth access token for Vertex AI; check the service account "
                "or application default credentials and their permissions",
                provider=ctx.provider,
                model=ctx.model,
                retryable=bool(getattr(exc, "retryable", False)),
                code="token_refresh_failed",
                provider_message=str(exc)[:300],
            ) from None
        except auth.exceptions.TransportError as exc:
            raise ProviderConnectionError(
                f"Could not reach Google's token endpoint ({type(exc).__name__})",
                provider=ctx.provider,
                model=ctx.model,
                code="token_endpoint_unreachable",
            ) from None


def _credentials_from_file(path: str, scopes: tuple[str, ...]) -> Any:
    """Credentials from a JSON file, loaded by the method for its ``type`` (google-auth
    warns against its generic loader for files of unchecked type)."""
    auth = _google_auth()
    with open(path, encoding="utf-8") as handle:
        info = json.load(handle)
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            path, scopes=list(scopes)
        )
    if kind == "authorized_user":
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_file(  # type: ignore[no-untyped-call]
            path, scopes=list(scopes)
        )
    raise auth.exceptions.DefaultCredentialsError(
        f"credentials_file has type {kind!r}; use a 'service_account' or 'authorized_user' "
        "file, or application default credentials for other kinds"
    )


@functools.cache
def _google_auth() -> Any:
    """``google.auth`` with its ``exceptions`` module, or the error naming the extra."""
    try:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport
    except ImportError as exc:
        raise MissingExtraError(
            f"The 'vertex' provider needs google-auth for OAuth tokens: {INSTALL_HINT} "
            "(or pass ClientConfig(extra={'access_token': ...}))"
        ) from exc
    return google.auth


@functools.cache
def _transport() -> Any:
    """A google-auth transport over ``urllib.request`` (built on first use)."""
    auth = _google_auth()
    from google.auth import transport

    class _Response(transport.Response):
        def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
            self._status, self._headers, self._data = status, headers, data

        @property
        def status(self) -> int:
            return self._status

        @property
        def headers(self) -> Mapping[str, str]:
            return self._headers

        @property
        def data(self) -> bytes:
            return self._data

    class UrllibRequest(transport.Request):
        def __init__(self, timeout: float) -> None:
            self._timeout = timeout

        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: bytes | None = None,
            headers: Mapping[str, str] | None = None,
            timeout: float | None = None,
            **kwargs: Any,
        ) -> _Response:
            request = urllib.request.Request(
                url, data=body, headers=dict(headers or {}), method=method
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout or self._timeout) as reply:
                    return _Response(reply.status, dict(reply.headers), reply.read())
            except urllib.error.HTTPError as exc:  # an answer, just not a 2xx one
                return _Response(exc.code, dict(exc.headers or {}), exc.read())
            except (urllib.error.URLError, OSError) as exc:
                raise auth.exceptions.TransportError(f"{type(exc).__name__}: {exc}") from exc

    return UrllibRequest
