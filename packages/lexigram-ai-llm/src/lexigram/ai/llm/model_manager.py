"""``LLMModelManager``: the lifecycle of local models, in-process and in Ollama.

Local GGUF models (run by the ``local`` provider): list what is available, load one ahead of
use, unload it, and unload models left idle for ``idle_timeout`` seconds. An Ollama server's
models, through its HTTP API: list (``/api/tags``), pull with progress (``/api/pull``, NDJSON),
delete (``/api/delete``) and show the running ones (``/api/ps``).

Every failure is a typed ``LLMError``: ``ProviderConnectionError`` when Ollama cannot be
reached, ``LLMModelNotFoundError`` for an unknown model (404), ``ModelPullError`` when a pull
reports an error or ends before ``success``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from lexigram.ai.llm.config import url_from_env
from lexigram.ai.llm.exceptions import (
    LLMError,
    ProviderConnectionError,
    StreamError,
    error_for_status,
)

if TYPE_CHECKING:
    from lexigram.ai.llm._http1 import HTTP1Transport
    from lexigram.ai.llm._transport import Response
    from lexigram.ai.llm.providers.local import LoadOptions, LocalModel, LocalModelPool

__all__ = [
    "DEFAULT_OLLAMA_URL",
    "LLMModelManager",
    "LocalModelInfo",
    "ModelManagerError",
    "ModelPullError",
    "OllamaModel",
    "OllamaRunningModel",
    "PullProgress",
    "ollama_url_from_env",
]

DEFAULT_OLLAMA_URL = "http://localhost:11434"
_OLLAMA = "ollama"


class ModelManagerError(LLMError):
    """A model-management operation failed."""

    default_code = "model_manager_error"


class ModelPullError(ModelManagerError):
    """A pull failed: the server sent an error line, or the stream ended before ``success``."""

    default_code = "model_pull_failed"


# -- what the manager reports --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalModelInfo:
    """A GGUF model the ``local`` provider can run."""

    name: str
    path: Path
    size_bytes: int
    loaded: bool = False
    bundled: bool = False
    n_ctx: int | None = None
    idle_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class OllamaModel:
    """One entry of ``/api/tags``."""

    name: str
    model: str
    size: int = 0
    digest: str = ""
    modified_at: str | None = None
    format: str | None = None
    family: str | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OllamaModel:
        details = data.get("details") or {}
        name = str(data.get("name") or data.get("model") or "")
        return cls(
            name=name,
            model=str(data.get("model") or name),
            size=int(data.get("size") or 0),
            digest=str(data.get("digest") or ""),
            modified_at=data.get("modified_at"),
            format=details.get("format"),
            family=details.get("family"),
            parameter_size=details.get("parameter_size"),
            quantization_level=details.get("quantization_level"),
        )


@dataclass(frozen=True, slots=True)
class OllamaRunningModel:
    """One entry of ``/api/ps``: a model loaded in Ollama's memory."""

    name: str
    model: str
    size: int = 0
    size_vram: int = 0
    digest: str = ""
    expires_at: str | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OllamaRunningModel:
        details = data.get("details") or {}
        name = str(data.get("name") or data.get("model") or "")
        return cls(
            name=name,
            model=str(data.get("model") or name),
            size=int(data.get("size") or 0),
            size_vram=int(data.get("size_vram") or 0),
            digest=str(data.get("digest") or ""),
            expires_at=data.get("expires_at"),
            parameter_size=details.get("parameter_size"),
            quantization_level=details.get("quantization_level"),
        )


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One line of a pull: a status, and for a layer download its digest and byte counts."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None

    @property
    def fraction(self) -> float | None:
        """Share of the current layer downloaded (0..1), when the server says."""
        if not self.total:
            return None
        return min(1.0, (self.completed or 0) / self.total)

    @property
    def done(self) -> bool:
        return self.status == "success"


def ollama_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """Ollama's address from ``OLLAMA_HOST`` (``host``, ``host:port`` or a URL; port 11434
    when none is given), else the default."""
    value = (os.environ if environ is None else environ).get("OLLAMA_HOST", "").strip()
    if not value:
        return DEFAULT_OLLAMA_URL
    return url_from_env("OLLAMA_HOST", value, allow_bare_host=True, default=DEFAULT_OLLAMA_URL)


# -- the manager ---------------------------------------------------------------------------


class LLMModelManager:
    """Lists, loads and unloads local models; lists, pulls and deletes Ollama models.

    ``idle_timeout`` (seconds, ``None`` to keep models loaded) applies to the local model pool
    the manager is given (by default the one every ``local`` client shares). ``models_dir``
    holds extra ``.gguf`` files; ``ollama_url`` defaults to ``OLLAMA_HOST`` or
    ``http://localhost:11434``. Use as ``async with`` or call ``close()``.
    """

    def __init__(
        self,
        *,
        idle_timeout: float | None = 300.0,
        models_dir: str | Path | Iterable[str | Path] | None = None,
        ollama_url: str | None = None,
        timeout: float = 30.0,
        pool: LocalModelPool | None = None,
        load_options: LoadOptions | None = None,
    ) -> None:
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive seconds, or None to keep models")
        self.idle_timeout = idle_timeout
        if models_dir is None:
            self.models_dirs: tuple[Path, ...] = ()
        elif isinstance(models_dir, str | Path):
            self.models_dirs = (Path(models_dir).expanduser(),)
        else:
            self.models_dirs = tuple(Path(d).expanduser() for d in models_dir)
        self.ollama_url = (ollama_url or ollama_url_from_env()).rstrip("/")
        self.timeout = timeout
        self._pool = pool
        self._load_options = load_options
        self._transport: HTTP1Transport | None = None

    def __repr__(self) -> str:
        return (
            f"LLMModelManager(idle_timeout={self.idle_timeout!r}, "
            f"models_dirs={[str(d) for d in self.models_dirs]!r}, ollama_url={self.ollama_url!r})"
        )

    async def __aenter__(self) -> LLMModelManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session and release the local models this manager loaded."""
        if self._pool is not None:
            self._pool.release(id(self))
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()

    # -- local models ----------------------------------------------------------------------

    @property
    def pool(self) -> LocalModelPool:
        """The local model pool (created on first use; needs the ``local`` extra)."""
        if self._pool is None:
            from lexigram.ai.llm.providers.local import default_pool

            self._pool = default_pool()
            self._pool.set_idle_timeout(self.idle_timeout)
        elif self._pool.idle_timeout != self.idle_timeout:
            self._pool.set_idle_timeout(self.idle_timeout)
        return self._pool

    def list_local(self) -> list[LocalModelInfo]:
        """The bundled model, the ``.gguf`` files in ``models_dir`` and any loaded model."""
        from lexigram.ai.llm.exceptions import MissingExtraError
        from lexigram.ai.llm.providers.local import DEFAULT_MODEL, bundled_model_path

        loaded = {model.spec.path: model for model in self.pool.loaded()}
        infos: dict[Path, LocalModelInfo] = {}
        try:
            path = bundled_model_path()
        except (MissingExtraError, ValueError):
            path = None
        if path is not None:
            infos[path] = self._info(DEFAULT_MODEL, path, loaded.get(path), bundled=True)
        for directory in self.models_dirs:
            if not directory.is_dir():
                continue
            for file in sorted(directory.glob("*.gguf")):
                resolved = file.resolve()
                if resolved not in infos:
                    infos[resolved] = self._info(file.stem, resolved, loaded.get(resolved))
        for path, model in loaded.items():
            if path not in infos:
                infos[path] = self._info(model.spec.name, path, model, bundled=model.spec.bundled)
        return list(infos.values())

    def loaded(self) -> list[LocalModelInfo]:
        """The local models in memory now."""
        return [
            self._info(m.spec.name, m.spec.path, m, bundled=m.spec.bundled)
            for m in self.pool.loaded()
        ]

    async def load(self, model: str | None = None, **options: Any) -> LocalModelInfo:
        """Load a local model now and keep it until ``unload``, ``close`` or the idle timeout.

        ``model`` as for the ``local`` provider (``None``: the bundled model; a name found in
        ``models_dir``; a ``.gguf`` path); ``options``: ``n_ctx``, ``n_threads``,
        ``n_gpu_layers``, ``chat_template``."""
        from lexigram.ai.llm.providers.local import LoadOptions, resolve_model

        spec = resolve_model(model, self._resolve_options())
        base = self._load_options or LoadOptions()
        load_options = LoadOptions(
            n_ctx=int(options.get("n_ctx", base.n_ctx)),
            n_threads=options.get("n_threads", base.n_threads),
            n_gpu_layers=int(options.get("n_gpu_layers", base.n_gpu_layers)),
            chat_template=options.get("chat_template", base.chat_template),
        )
        loaded = await self.pool.aget(spec, load_options, holder=id(self))
        return self._info(spec.name, spec.path, loaded, bundled=spec.bundled)

    async def unload(self, model: str | Path) -> bool:
        """Unload a local model (by name or path) now; ``False`` when it was not loaded.

        Queued generations finish first; a later request loads it again."""
        return bool(self.pool.unload(model))

    def unload_idle(self, max_idle: float | None = None) -> list[str]:
        """Unload now every local model idle for ``max_idle`` seconds (default:
        ``idle_timeout``); the names unloaded."""
        limit = self.idle_timeout if max_idle is None else max_idle
        if limit is None:
            return []
        return [model.spec.name for model in self.pool.unload_idle(limit)]

    def _resolve_options(self) -> dict[str, Any]:
        return {"models_dir": str(self.models_dirs[0])} if self.models_dirs else {}

    @staticmethod
    def _info(
        name: str, path: Path, model: LocalModel | None, *, bundled: bool = False
    ) -> LocalModelInfo:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        return LocalModelInfo(
            name=name,
            path=path,
            size_bytes=size,
            loaded=model is not None,
            bundled=bundled,
            n_ctx=model.n_ctx if model is not None else None,
            idle_seconds=(
                None if model is None or model.busy else time.monotonic() - model.last_used
            ),
        )

    # -- Ollama ----------------------------------------------------------------------------

    async def list_ollama(self) -> list[OllamaModel]:
        """The models an Ollama server has pulled (``GET /api/tags``)."""
        data = await self._ollama_json("GET", "/api/tags")
        return [OllamaModel.from_json(m) for m in _models_of(data)]

    async def running(self) -> list[OllamaRunningModel]:
        """The models Ollama holds in memory now (``GET /api/ps``)."""
        data = await self._ollama_json("GET", "/api/ps")
        return [OllamaRunningModel.from_json(m) for m in _models_of(data)]

    async def delete(self, model: str) -> None:
        """Delete a pulled model (``DELETE /api/delete``); 404 raises
        ``LLMModelNotFoundError``."""
        await self._ollama_json("DELETE", "/api/delete", {"model": model}, model=model)

    async def pull(
        self,
        model: str,
        *,
        on_progress: Callable[[PullProgress], Any] | None = None,
        insecure: bool = False,
    ) -> PullProgress:
        """Pull a model, calling ``on_progress`` for every progress line; returns the final
        ``success`` line."""
        last: PullProgress | None = None
        async for progress in self.pull_stream(model, insecure=insecure):
            last = progress
            if on_progress is not None:
                on_progress(progress)
        assert last is not None  # pull_stream raises unless it reached success
        return last

    async def pull_stream(
        self, model: str, *, insecure: bool = False
    ) -> AsyncIterator[PullProgress]:
        """Pull a model (``POST /api/pull``), yielding each NDJSON progress line as it
        arrives. Ends after ``success``; an error line or a cut stream raises
        ``ModelPullError``."""
        from lexigram.ai.llm._framing import NDJSONDecoder

        body = orjson.dumps({"model": model, "insecure": insecure, "stream": True})
        response = await self._send("POST", "/api/pull", body, model=model, stream=True)
        framer = NDJSONDecoder(self._http().limits.max_line_bytes)
        batches = response.events(framer)
        try:
            async for lines in batches:
                for line in lines:
                    progress = _pull_line(line, model)
                    yield progress
                    if progress.done:
                        return
            for line in framer.finish():
                progress = _pull_line(line, model)
                yield progress
                if progress.done:
                    return
        except StreamError as error:
            raise ModelPullError(
                f"The pull of {model!r} was cut before Ollama reported success",
                provider=_OLLAMA,
                model=model,
                retryable=True,
            ) from error
        except LLMError as error:
            _attributed(error, model)
            raise
        finally:
            await batches.aclose()
            await response.aclose()
        raise ModelPullError(
            f"The pull of {model!r} ended before Ollama reported success",
            provider=_OLLAMA,
            model=model,
            retryable=True,
        )

    async def _ollama_json(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
    ) -> Any:
        data = orjson.dumps(payload) if payload is not None else None
        response = await self._send(method, path, data, model=model)
        body = response.body
        if not body.strip():
            return {}
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ModelManagerError(
                f"Ollama answered {method} {path} with something that is not JSON",
                provider=_OLLAMA,
                model=model,
                provider_message=body[:200].decode("utf-8", "replace"),
            ) from exc

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        model: str | None,
        stream: bool = False,
    ) -> Response:
        """One request through the transport; a typed error for any failure or 4xx/5xx."""
        from lexigram.ai.llm.providers.base import HTTPRequest

        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = HTTPRequest(method, self.ollama_url + path, headers, body)
        try:
            response = await self._http().send(request, stream=stream)
        except LLMError as error:
            _attributed(error, model)
            raise
        if response.status >= 400:
            await response.aclose()
            raise _ollama_error(response.status, response.body, model)
        return response

    def _http(self) -> HTTP1Transport:
        if self._transport is None:
            from lexigram.ai.llm._http1 import HTTP1Transport

            self._transport = HTTP1Transport(
                timeout=self.timeout, connection_error=self._connection_error
            )
        return self._transport

    def _connection_error(self, exc: BaseException) -> LLMError:
        return ProviderConnectionError(
            f"Could not reach Ollama at {self.ollama_url} ({type(exc).__name__}); is Ollama "
            f"running (`ollama serve`)? Set OLLAMA_HOST or LLMModelManager(ollama_url=...)",
            provider=_OLLAMA,
        )


def _attributed(error: LLMError, model: str | None) -> LLMError:
    if error.provider is None:
        error.provider = _OLLAMA
    if error.model is None:
        error.model = model
    return error


def _models_of(data: Any) -> list[Mapping[str, Any]]:
    models = data.get("models") if isinstance(data, Mapping) else None
    return [m for m in models or () if isinstance(m, Mapping)]


def _ollama_error(status: int, body: bytes, model: str | None) -> LLMError:
    """Ollama's ``{"error": "..."}`` bodies carry only a message: the status decides."""
    message = None
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, Mapping) and isinstance(data.get("error"), str):
        message = data["error"]
    elif body:
        message = body[:300].decode("utf-8", "replace")
    return error_for_status(status, provider=_OLLAMA, model=model, provider_message=message)


def _pull_line(line: bytes, model: str) -> PullProgress:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ModelPullError(
            "Ollama sent a pull progress line that is not JSON (a cut stream?)",
            provider=_OLLAMA,
            model=model,
            retryable=True,
            provider_message=line[:200].decode("utf-8", "replace"),
        ) from exc
    if not isinstance(data, Mapping):
        raise ModelPullError(
            "Ollama sent a pull progress line that is not an object",
            provider=_OLLAMA,
            model=model,
        )
    if data.get("error"):
        raise ModelPullError(
            f"Ollama could not pull {model!r}",
            provider=_OLLAMA,
            model=model,
            provider_message=str(data["error"]),
        )
    total, completed = data.get("total"), data.get("completed")
    return PullProgress(
        status=str(data.get("status") or ""),
        digest=data.get("digest"),
        total=int(total) if total is not None else None,
        completed=int(completed) if completed is not None else None,
    )
